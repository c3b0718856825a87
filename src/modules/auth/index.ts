export { authRoutes as authModule } from './auth.routes.ts'
