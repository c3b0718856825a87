import type { IncomingMessage, ServerResponse } from 'node:http'
import helmet from 'helmet'
import type { HelmetOptions } from 'helmet'

/**
 * The security headers of every answer, computed once at start by helmet itself. Helmet's
 * middleware is a pure function of its options (no nonces or per-request directives here), so
 * running it once against a recording response gives exactly the headers it would set on each one;
 * the onRequest hook then sets them with one call, instead of rebuilding helmet's configuration on
 * every request (as @fastify/helmet does).
 */
export function securityHeaders(options: Readonly<HelmetOptions>): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader(name: string, value: number | string | readonly string[]) {
      headers[name] = Array.isArray(value) ? value.join(', ') : String(value)
      return recorder
    },
    removeHeader(name: string) {
      // Helmet removes X-Powered-By, which Fastify never sets.
      delete headers[name]
    },
  }
  // A bad option throws (helmet 8.1+ throws rather than passing the error on): caught at start.
  helmet({ ...options })({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error instanceof Error) throw error
    if (error !== undefined) throw new Error('helmet refused its options')
  })
  return Object.freeze(headers)
}
