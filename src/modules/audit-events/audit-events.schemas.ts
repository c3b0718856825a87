import { Type } from 'typebox'
import type { Static } from 'typebox'
import { ListQueryBase, Timestamp, Uuid, noNul, page, strict } from '../../platform/schemas.ts'

const Action = Type.String({ minLength: 3, maxLength: 64, pattern: '^[a-z][a-z0-9_-]*(\\.[a-z][a-z0-9_-]*)+$', description: '<resource>.<verb>, e.g. project.created' })
const ShortText = (maxLength: number, description: string) => Type.Union([Type.String({ maxLength, pattern: noNul }), Type.Null()], { description })

export const AuditEvent = Type.Object(
  {
    id: Uuid,
    at: Timestamp,
    actor_type: Type.Union([Type.Literal('user'), Type.Literal('api_key'), Type.Literal('operator'), Type.Literal('system')]),
    actor_id: ShortText(200, 'User id, API key id, or the operator\'s account name'),
    action: Action,
    target_type: ShortText(64, 'Kind of the object acted on'),
    target_id: ShortText(200, 'Id of the object acted on'),
    request_id: ShortText(128, 'X-Request-Id of the request that made the change; null for operator commands'),
    ip: ShortText(45, 'Client IP of that request'),
    details: Type.Object({}, { additionalProperties: true, maxProperties: 50, description: 'Small, non-secret facts about the change' }),
  },
  strict,
)
export const AuditEventPage = page(AuditEvent)

export const ListAuditEventsQuery = Type.Object(
  {
    ...ListQueryBase,
    action: Type.Optional(Action),
    since: Type.Optional(Type.String({ format: 'date-time', maxLength: 40, description: 'Only events at or after this instant (RFC 3339)' })),
  },
  strict,
)

export type AuditEventRow = Static<typeof AuditEvent>
export type ListAuditEventsInput = Static<typeof ListAuditEventsQuery>
