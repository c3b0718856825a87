export { tenantsRoutes as tenantsModule } from './tenants.routes.ts'
