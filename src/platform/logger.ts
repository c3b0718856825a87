import type { LoggerOptions } from 'pino'
import type { Config } from './config.ts'

/** pino options: JSON lines, with credentials redacted wherever they could appear. */
export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    serializers: {
      // The path only: a query string may carry anything a client put there, tokens included.
      req: (req: { method?: string; url?: string; ip?: string; id?: string }) => ({
        method: req.method,
        path: (req.url ?? '').split('?')[0],
        remoteAddress: req.ip,
      }),
    },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'res.headers["set-cookie"]',
        '*.password',
        '*.refresh_token',
        '*.access_token',
        '*.otp',
        '*.key',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  }
}
