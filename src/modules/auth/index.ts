import type { FastifyPluginAsync } from 'fastify'
import type { Deps } from '../../platform/deps.ts'

// Placeholder until the module is written (in progress).
export const authModule: FastifyPluginAsync<{ deps: Deps }> = async () => {}
