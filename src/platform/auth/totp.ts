import { generate, generateSecret, generateURI, verify } from 'otplib'

/**
 * TOTP as the contract fixes it (RFC 6238): SHA-1, 6 digits, 30 s steps, base32 secrets of 20
 * random bytes (160 bits, RFC 4226's recommendation). otplib compares codes in constant time.
 */
export const totpPeriodSec = 30
/** Clock drift allowed between the server and the authenticator app: one step either way. */
const toleranceSec = totpPeriodSec

const nowSec = () => Math.floor(Date.now() / 1000)

/** The 30 s step a Unix time (seconds) falls in. */
export const totpStep = (epochSec: number = nowSec()) => Math.floor(epochSec / totpPeriodSec)

export function newTotpSecret(): string {
  return generateSecret({ length: 20 })
}

/** otpauth:// URI for authenticator apps (QR code); SHA-1, 6 digits and 30 s are the format's defaults. */
export function totpUri(input: { issuer: string; account: string; secret: string }): string {
  return generateURI({ issuer: input.issuer, label: input.account, secret: input.secret, algorithm: 'sha1', digits: 6, period: totpPeriodSec })
}

/** The code of one moment: what the user's app shows then (tests and tools use it). */
export async function totpCode(secret: string, epochSec: number = nowSec()): Promise<string> {
  return generate({ secret, algorithm: 'sha1', digits: 6, period: totpPeriodSec, epoch: epochSec })
}

/**
 * The step a code belongs to, if it matches the current step or one either side and is later than
 * `afterStep` (the last step this user had accepted); undefined otherwise. Refusing steps at or
 * before afterStep is what makes a code single-use, even inside its 90 s window.
 */
export async function matchTotp(secret: string, code: string, afterStep: number | null, epochSec: number = nowSec()): Promise<number | undefined> {
  if (!/^[0-9]{6}$/.test(code)) return undefined
  const result = await verify({
    secret,
    token: code,
    algorithm: 'sha1',
    digits: 6,
    period: totpPeriodSec,
    epoch: epochSec,
    epochTolerance: toleranceSec,
    ...(afterStep === null ? {} : { afterTimeStep: afterStep }),
  })
  // The result type also covers HOTP, whose match has no timeStep.
  return result.valid && 'timeStep' in result ? result.timeStep : undefined
}
