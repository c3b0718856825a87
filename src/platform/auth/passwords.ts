import { hash, verify } from '@node-rs/argon2'

/** argon2id with OWASP's second recommended profile (19 MiB, t=2, p=1). Algorithm 2 = argon2id. */
const argonOptions = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

export function hashPassword(password: string): Promise<string> {
  return hash(password, argonOptions)
}

let dummyHash: Promise<string> | undefined

/**
 * Verifies a password. With no stored hash (unknown tenant or email), it verifies against a dummy
 * hash of the same cost, so that the answer takes as long whichever part was wrong.
 */
export async function verifyPassword(storedHash: string | undefined, password: string): Promise<boolean> {
  dummyHash ??= hashPassword('dummy password that matches no account')
  const target = storedHash ?? (await dummyHash)
  try {
    const ok = await verify(target, password)
    return storedHash !== undefined && ok
  } catch {
    return false
  }
}
