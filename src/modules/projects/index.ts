export { projectsRoutes as projectsModule } from './projects.routes.ts'
export { findProject } from './projects.repo.ts'
