// Users and API tokens over HTTP, for `usher user ...` and `usher token
// ...` against a running broker: changes take effect on the next request
// or connection. Only administrators reach these routes (route-permissions).
// No answer ever carries a password hash; a token's secret is answered
// once, by the request that creates it.

import type { FastifyInstance } from 'fastify';
import { Type, type Static } from 'typebox';

import type { Authenticator } from '../auth/authenticator.js';
import { MAX_PATTERNS, MAX_PATTERN_LENGTH, type Permissions } from '../auth/permissions.js';
import { documented } from './route-schema.js';

const tags = ['admin'];
const Strict = { additionalProperties: false } as const;

const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' });
const Patterns = Type.Array(Type.String({ minLength: 1, maxLength: MAX_PATTERN_LENGTH }), {
  maxItems: MAX_PATTERNS,
});
const PermissionsSchema = Type.Object(
  { publish: Patterns, consume: Patterns, manage: Patterns },
  { ...Strict, description: 'glob patterns of queue names: * any run, ? one character' },
);
const PermissionsInput = Type.Partial(PermissionsSchema, Strict);
const Password = Type.String({ minLength: 8, maxLength: 1024 });

const UserParams = Type.Object({ user: Name }, Strict);
const TokenParams = Type.Object({ token: Name }, Strict);
const NewUser = Type.Object(
  {
    password: Password,
    admin: Type.Optional(Type.Boolean()),
    permissions: Type.Optional(PermissionsInput),
  },
  Strict,
);
const NewPassword = Type.Object({ password: Password }, Strict);
const NewPermissions = Type.Object(
  { admin: Type.Optional(Type.Boolean()), permissions: PermissionsInput },
  Strict,
);
const NewToken = Type.Object({ permissions: Type.Optional(PermissionsInput) }, Strict);

const UserInfo = Type.Object({
  name: Type.String(),
  admin: Type.Boolean(),
  permissions: PermissionsSchema,
  created: Type.String(),
});
const TokenInfo = Type.Object({
  name: Type.String(),
  permissions: PermissionsSchema,
  created: Type.String(),
});
const Whoami = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  admin: Type.Boolean(),
  permissions: PermissionsSchema,
});

export function registerAdminRoutes(app: FastifyInstance, authenticator: Authenticator): void {
  const store = authenticator.store;

  app.get(
    '/admin/whoami',
    {
      schema: documented({
        operationId: 'whoami',
        summary: 'Who the credentials of this request belong to',
        tags,
        response: { 200: Whoami },
      }),
    },
    // Fields picked by hand: the principal also holds its password hash.
    async (request) => {
      const { name, kind, admin, permissions } = request.principal!;
      return { name, kind, admin, permissions };
    },
  );

  app.get(
    '/admin/users',
    {
      schema: documented({
        operationId: 'listUsers',
        summary: 'List users (without their password hashes)',
        tags,
        response: { 200: Type.Object({ users: Type.Array(UserInfo) }) },
      }),
    },
    async () => ({ users: store.listUsers() }),
  );

  app.put<{ Params: Static<typeof UserParams>; Body: Static<typeof NewUser> }>(
    '/admin/users/:user',
    {
      schema: documented({
        operationId: 'addUser',
        summary: 'Add a user; 409 USER_EXISTS when the name is taken',
        tags,
        params: UserParams,
        body: NewUser,
        response: { 201: UserInfo },
      }),
    },
    async (request, reply) => {
      const { password, admin, permissions } = request.body;
      const user = await store.addUser(request.params.user, password, {
        admin,
        permissions: filled(permissions),
      });
      return reply.code(201).send(user);
    },
  );

  app.delete<{ Params: Static<typeof UserParams> }>(
    '/admin/users/:user',
    {
      schema: documented({
        operationId: 'deleteUser',
        summary: 'Delete a user',
        tags,
        params: UserParams,
      }),
    },
    async (request, reply) => {
      await store.deleteUser(request.params.user);
      return reply.code(204).send();
    },
  );

  app.put<{ Params: Static<typeof UserParams>; Body: Static<typeof NewPassword> }>(
    '/admin/users/:user/password',
    {
      schema: documented({
        operationId: 'setPassword',
        summary: "Change a user's password",
        tags,
        params: UserParams,
        body: NewPassword,
      }),
    },
    async (request, reply) => {
      await store.setPassword(request.params.user, request.body.password);
      return reply.code(204).send();
    },
  );

  app.put<{ Params: Static<typeof UserParams>; Body: Static<typeof NewPermissions> }>(
    '/admin/users/:user/permissions',
    {
      schema: documented({
        operationId: 'setPermissions',
        summary: "Replace a user's permissions (a list left out becomes empty), and admin if given",
        tags,
        params: UserParams,
        body: NewPermissions,
        response: { 200: UserInfo },
      }),
    },
    async (request) => {
      const { admin, permissions } = request.body;
      return store.setPermissions(request.params.user, { admin, permissions: filled(permissions) });
    },
  );

  app.get(
    '/admin/tokens',
    {
      schema: documented({
        operationId: 'listTokens',
        summary: 'List API tokens (names and permissions, never secrets)',
        tags,
        response: { 200: Type.Object({ tokens: Type.Array(TokenInfo) }) },
      }),
    },
    async () => ({ tokens: store.listTokens() }),
  );

  app.put<{ Params: Static<typeof TokenParams>; Body: Static<typeof NewToken> }>(
    '/admin/tokens/:token',
    {
      schema: documented({
        operationId: 'createToken',
        summary: 'Create an API token; the answer is the only time it is shown',
        tags,
        params: TokenParams,
        body: NewToken,
        response: { 201: Type.Object({ name: Type.String(), token: Type.String() }) },
      }),
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const { token } = await store.createToken(
        request.params.token,
        filled(request.body.permissions),
      );
      return reply.code(201).send({ name: request.params.token, token });
    },
  );

  app.delete<{ Params: Static<typeof TokenParams> }>(
    '/admin/tokens/:token',
    {
      schema: documented({
        operationId: 'revokeToken',
        summary: 'Revoke an API token',
        tags,
        params: TokenParams,
      }),
    },
    async (request, reply) => {
      await store.revokeToken(request.params.token);
      return reply.code(204).send();
    },
  );
}

function filled(permissions: Partial<Permissions> | undefined): Permissions {
  return {
    publish: permissions?.publish ?? [],
    consume: permissions?.consume ?? [],
    manage: permissions?.manage ?? [],
  };
}
