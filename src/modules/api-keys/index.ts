export { apiKeysRoutes as apiKeysModule } from './api-keys.routes.ts'
