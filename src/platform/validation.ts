import { Ajv } from 'ajv'
import type { Options } from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifySchemaCompiler } from 'fastify'

/**
 * Strict validation: unknown properties are refused, never stripped (Fastify's default strips
 * them silently), and types are never coerced in bodies. Query strings and path parameters are
 * text on the wire, so there numbers are coerced; a repeated query parameter arrives as an array
 * and fails its scalar type.
 */
const common: Options = { removeAdditional: false, useDefaults: true, allErrors: true, strict: false, strictNumbers: true, coerceTypes: false }

function build(options: Options): Ajv {
  const ajv = new Ajv({ ...common, ...options })
  addFormats.default(ajv, ['uuid', 'date', 'date-time', 'email', 'uri'])
  ajv.addKeyword({ keyword: 'x-typebox', schemaType: 'object' })
  return ajv
}

const bodyAjv = build({})
const textAjv = build({ coerceTypes: true })

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object)
