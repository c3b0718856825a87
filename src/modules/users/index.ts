export { usersRoutes as usersModule } from './users.routes.ts'
