import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** Contract: an incoming X-Request-Id of 1–128 characters from [A-Za-z0-9._:-] is kept, else replaced. */
const acceptedRequestId = /^[A-Za-z0-9._:-]{1,128}$/

export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id']
  return typeof incoming === 'string' && acceptedRequestId.test(incoming) ? incoming : randomUUID()
}
