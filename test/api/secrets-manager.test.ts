import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/platform/config.ts'
import { loadConfigWithSecrets, resolveAwsSecrets } from '../../src/platform/secrets-manager.ts'

const kek = randomBytes(32).toString('base64')

describe('secrets from AWS Secrets Manager', () => {
  it('when NAME_SECRET_ID is set, then NAME takes the secret value, and #key picks a field of a JSON secret', async () => {
    const store: Record<string, string> = {
      'arn:aws:secretsmanager:eu-west-1:1:secret:kek': kek,
      'prod/db': JSON.stringify({ url: 'postgres://app@db.internal:5432/saas', password: 'x' }),
    }
    const env = await resolveAwsSecrets(
      { KEY_ENCRYPTION_KEY_SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:1:secret:kek', DATABASE_URL_SECRET_ID: 'prod/db#url' },
      async (id) => store[id] ?? Promise.reject(new Error('not found')),
    )
    assert.equal(env.KEY_ENCRYPTION_KEY, kek)
    assert.equal(env.DATABASE_URL, 'postgres://app@db.internal:5432/saas')
  })

  it('when NAME and NAME_SECRET_ID are both set, then start-up stops naming the variable', async () => {
    await assert.rejects(resolveAwsSecrets({ JWT_SECRET: 'x'.repeat(40), JWT_SECRET_SECRET_ID: 'jwt' }, async () => 'y'), (err: ConfigError) => err.variable === 'JWT_SECRET_SECRET_ID')
  })

  it('when the secret cannot be read, then the error names the variable and not any secret value', async () => {
    await assert.rejects(
      resolveAwsSecrets({ REDIS_URL_SECRET_ID: 'missing' }, async () => {
        throw Object.assign(new Error('Secrets Manager can’t find the specified secret.'), { name: 'ResourceNotFoundException' })
      }),
      (err: ConfigError) => err.variable === 'REDIS_URL_SECRET_ID' && /ResourceNotFoundException/.test(err.message),
    )
    await assert.rejects(resolveAwsSecrets({ DATABASE_URL_SECRET_ID: 'db#url' }, async () => 'not json'), (err: ConfigError) => err.variable === 'DATABASE_URL_SECRET_ID')
  })

  it('when the real SDK talks to a Secrets Manager endpoint, then the request is signed and the value lands in the config', async () => {
    const seen: { target?: string; auth?: string; body?: string } = {}
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        seen.target = String(req.headers['x-amz-target'])
        seen.auth = String(req.headers.authorization)
        seen.body = body
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
        res.end(JSON.stringify({ ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:kek', Name: 'kek', SecretString: kek, VersionId: 'v1' }))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const config = await loadConfigWithSecrets({
        NODE_ENV: 'test',
        KEY_ENCRYPTION_KEY_SECRET_ID: 'kek',
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'test-secret',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      })
      assert.equal(config.keyEncryptionKey?.toString('base64'), kek)
      assert.equal(seen.target, 'secretsmanager.GetSecretValue')
      assert.match(seen.auth ?? '', /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//)
      assert.deepEqual(JSON.parse(seen.body ?? '{}'), { SecretId: 'kek' })
    } finally {
      server.close()
    }
  })
})
