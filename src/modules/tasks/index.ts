export { tasksRoutes as tasksModule } from './tasks.routes.ts'
