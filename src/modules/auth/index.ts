export { authRoutes as authModule } from './auth.routes.ts'
export { revokeLogins } from './auth.repo.ts'
export type { Revocation } from './auth.repo.ts'
