import { ConfigError, loadConfig } from './config.ts'
import type { Config } from './config.ts'

/**
 * Settings that may come from AWS Secrets Manager: set NAME_SECRET_ID to a secret's ARN or name,
 * optionally with `#key` to pick one field of a JSON secret (RDS-style secrets). Fetched once at
 * start with the pod's IRSA role (the default credential chain), before the config is validated.
 */
export const awsSecretNames = ['DATABASE_URL', 'DATABASE_OWNER_URL', 'REDIS_URL', 'JWT_PRIVATE_KEY', 'JWT_SECRET', 'KEY_ENCRYPTION_KEY'] as const

type Env = Record<string, string | undefined>
export type SecretFetcher = (secretId: string) => Promise<string>

/** The real fetcher; the SDK is loaded only when a secret is asked for. */
function awsFetcher(env: Env): SecretFetcher {
  return async (secretId) => {
    const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager')
    const keyId = env.AWS_ACCESS_KEY_ID
    const secret = env.AWS_SECRET_ACCESS_KEY
    const client = new SecretsManagerClient({
      ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
      ...(env.AWS_ENDPOINT_URL_SECRETS_MANAGER ? { endpoint: env.AWS_ENDPOINT_URL_SECRETS_MANAGER } : {}),
      ...(keyId && secret ? { credentials: { accessKeyId: keyId, secretAccessKey: secret, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } } : {}),
      maxAttempts: 3,
    })
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }))
      if (out.SecretString === undefined) throw new Error('the secret has no string value')
      return out.SecretString
    } finally {
      client.destroy()
    }
  }
}

/** Returns env with every NAME_SECRET_ID replaced by NAME = the secret's value. */
export async function resolveAwsSecrets(env: Env, fetch: SecretFetcher = awsFetcher(env)): Promise<Env> {
  const out: Env = { ...env }
  for (const name of awsSecretNames) {
    const ref = env[`${name}_SECRET_ID`]
    if (!ref) continue
    if (env[name] || env[`${name}_FILE`]) throw new ConfigError(`${name}_SECRET_ID`, `set only one of ${name}, ${name}_FILE and ${name}_SECRET_ID`)
    const [secretId, jsonKey] = ref.split('#')
    let value: string
    try {
      value = await fetch(secretId ?? ref)
    } catch (err) {
      // The SDK's message names the failure (access denied, not found) and never the secret's value.
      throw new ConfigError(`${name}_SECRET_ID`, `cannot read the secret from AWS Secrets Manager (${err instanceof Error ? err.name : 'error'}: ${err instanceof Error ? err.message : String(err)})`)
    }
    if (jsonKey) {
      let field: unknown
      try {
        field = (JSON.parse(value) as Record<string, unknown>)[jsonKey]
      } catch {
        throw new ConfigError(`${name}_SECRET_ID`, `the secret is not JSON, so "#${jsonKey}" cannot be read from it`)
      }
      if (typeof field !== 'string') throw new ConfigError(`${name}_SECRET_ID`, `the secret has no string field "${jsonKey}"`)
      value = field
    }
    out[name] = value
  }
  return out
}

/** loadConfig() after fetching any secrets named by NAME_SECRET_ID. */
export async function loadConfigWithSecrets(env: Env = process.env, fetch?: SecretFetcher): Promise<Config> {
  return loadConfig(await resolveAwsSecrets(env, fetch))
}
