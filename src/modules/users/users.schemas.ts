import { Type } from 'typebox'
import type { Static } from 'typebox'
import { ListQueryBase, Timestamp, Uuid, page, strict } from '../../platform/schemas.ts'

const Email = Type.String({ format: 'email', minLength: 3, maxLength: 254 })
/** The signup rule; the 256 cap bounds the hashing cost of one request. */
const Password = Type.String({ minLength: 12, maxLength: 256, description: '12–256 characters; stored only as an argon2id hash' })
const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')], {
  description: 'owner > admin > member > viewer',
})
/** A new user is never created as owner: ownership is granted afterwards, by an owner, with PATCH. */
const CreatableRole = Type.Union([Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')])

/** The whitelist of what a user looks like from outside: never a password hash or an MFA secret. */
export const User = Type.Object(
  {
    id: Uuid,
    email: Email,
    role: Role,
    disabled: Type.Boolean({ description: 'A disabled user cannot log in, refresh, or use a token already issued' }),
    mfa_enabled: Type.Boolean({ description: 'TOTP is enrolled and confirmed' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  strict,
)
export const UserPage = page(User)

export const CreateUser = Type.Object({ email: Email, password: Password, role: CreatableRole }, strict)

export const UpdateUser = Type.Object(
  { role: Type.Optional(Role), disabled: Type.Optional(Type.Boolean()) },
  {
    ...strict,
    minProperties: 1,
    description:
      'Nobody changes their own role or disables themselves; nobody grants a role above their own (only an owner grants owner); ' +
      'an admin cannot change a user whose role is above theirs; the last enabled owner cannot be demoted or disabled (409).',
  },
)

export const ListUsersQuery = Type.Object({ ...ListQueryBase }, strict)

export type UserRow = Static<typeof User>
export type CreateUserInput = Static<typeof CreateUser>
export type UpdateUserInput = Static<typeof UpdateUser>
export type ListUsersInput = Static<typeof ListUsersQuery>
