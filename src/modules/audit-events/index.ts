export { auditEventsRoutes as auditEventsModule } from './audit-events.routes.ts'
