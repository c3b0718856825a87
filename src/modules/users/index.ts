import type { FastifyPluginAsync } from 'fastify'
import type { Deps } from '../../platform/deps.ts'

// Being written for the identity issue; registers no route yet.
export const usersModule: FastifyPluginAsync<{ deps: Deps }> = async () => {}
