import { ConfigError } from '../src/platform/config.ts'
import type { Config } from '../src/platform/config.ts'
import { loadConfigWithSecrets } from '../src/platform/secrets-manager.ts'

/** A command line the script cannot run: exit 64 (EX_USAGE) with the usage text. */
export class UsageError extends Error {}

/**
 * Parses the arguments and loads the configuration, the same way for every operator script:
 * a usage mistake exits 64 with the usage text, a configuration mistake exits 78 naming the variable.
 */
export async function prepare<A>(parse: () => A, usage: string): Promise<{ args: A; config: Config } | number> {
  try {
    const args = parse()
    return { args, config: await loadConfigWithSecrets() }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n${usage}`)
      return 64
    }
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`)
      return 78
    }
    throw err
  }
}
