import type { LoggerOptions } from 'pino'
import type { Config } from './config.ts'

/** pino options: JSON lines, with credentials redacted wherever they could appear. */
export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
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
