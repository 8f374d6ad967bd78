// `usher user add|delete|passwd|set-permissions|list` and `usher token create|revoke|list`:
// users and API tokens of a running broker, over its /admin routes, so the
// broker sees each change at once. Needs an administrator's credentials
// (or the guest, from the broker's own machine while the guest is on).

import type { Command } from 'commander';

import type { Permissions } from '../client/index.js';
import { UsageError, type Cli, type CommandGroup } from './context.js';
import { table } from './output.js';

interface PermissionFlags {
  publish: string[];
  consume: string[];
  manage: string[];
}

interface AddFlags extends PermissionFlags {
  password?: string;
  admin?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export const userCommands: CommandGroup = {
  register(program: Command, cli: Cli): void {
    const user = program.command('user').description('manage users of a running broker');

    withPermissionFlags(
      user
        .command('add')
        .description('add a user')
        .argument('<name>', 'user name')
        .requiredOption('--new-password <password>', "the new user's password")
        .option('--admin', 'may manage users and tokens too'),
    ).action(async (name: string, flags: AddFlags & { newPassword: string }) => {
      const added = await cli.admin().addUser(name, flags.newPassword, {
        admin: flags.admin ?? false,
        permissions: permissionsOf(flags),
      });
      cli.note(`added user "${added.name}"`);
    });

    user
      .command('delete')
      .description('delete a user')
      .argument('<name>', 'user name')
      .action(async (name: string) => {
        await cli.admin().deleteUser(name);
        cli.note(`deleted user "${name}"`);
      });

    user
      .command('passwd')
      .description("change a user's password")
      .argument('<name>', 'user name')
      .requiredOption('--new-password <password>', 'the new password')
      .action(async (name: string, flags: { newPassword: string }) => {
        await cli.admin().setPassword(name, flags.newPassword);
        cli.note(`changed the password of "${name}"`);
      });

    withPermissionFlags(
      user
        .command('set-permissions')
        .description("replace a user's permissions with those given")
        .argument('<name>', 'user name')
        .option('--admin', 'may manage users and tokens too')
        .option('--no-admin', 'no longer an administrator')
        .option('--none', 'take every permission away'),
    ).action(async (name: string, flags: PermissionFlags & { admin?: boolean; none?: boolean }) => {
      const permissions = flags.none ? noPermissions(flags) : permissionsOf(flags);
      const changed = await cli.admin().setPermissions(name, permissions, { admin: flags.admin });
      cli.note(`changed the permissions of "${changed.name}"${changed.admin ? ' (admin)' : ''}`);
    });

    user
      .command('list')
      .description('list users and what they may do')
      .option('--json', 'one JSON object per line')
      .action(async (flags: { json?: boolean }) => {
        const users = await cli.admin().listUsers();
        if (flags.json) {
          for (const u of users) cli.out(JSON.stringify(u));
          return;
        }
        const rows = users.map((u) => [
          u.name,
          u.admin ? 'yes' : 'no',
          ...describe(u.permissions),
        ]);
        for (const line of table(['NAME', 'ADMIN', 'PUBLISH', 'CONSUME', 'MANAGE'], rows)) {
          cli.out(line);
        }
      });

    const token = program.command('token').description('manage API tokens of a running broker');

    withPermissionFlags(
      token
        .command('create')
        .description('create a token; it is printed once and never shown again')
        .argument('<name>', 'token name'),
    ).action(async (name: string, flags: PermissionFlags) => {
      const secret = await cli.admin().createToken(name, permissionsOf(flags));
      cli.out(secret);
      cli.note(`created token "${name}"; keep it now, it is not shown again`);
    });

    token
      .command('revoke')
      .description('revoke a token')
      .argument('<name>', 'token name')
      .action(async (name: string) => {
        await cli.admin().revokeToken(name);
        cli.note(`revoked token "${name}"`);
      });

    token
      .command('list')
      .description('list tokens (never their secrets)')
      .action(async () => {
        const tokens = await cli.admin().listTokens();
        const rows = tokens.map((t) => [t.name, ...describe(t.permissions)]);
        for (const line of table(['NAME', 'PUBLISH', 'CONSUME', 'MANAGE'], rows)) cli.out(line);
      });
  },
};

function withPermissionFlags(command: Command): Command {
  return command
    .option('--publish <pattern>', 'may publish to queues matching (repeatable)', collect, [])
    .option('--consume <pattern>', 'may consume from queues matching (repeatable)', collect, [])
    .option('--manage <pattern>', 'may declare, delete, purge matching (repeatable)', collect, []);
}

function permissionsOf(flags: PermissionFlags): Permissions {
  const permissions = { publish: flags.publish, consume: flags.consume, manage: flags.manage };
  if (Object.values(permissions).every((patterns) => patterns.length === 0)) {
    throw new UsageError('give at least one of --publish, --consume or --manage');
  }
  return permissions;
}

function noPermissions(flags: PermissionFlags): Permissions {
  if ([flags.publish, flags.consume, flags.manage].some((patterns) => patterns.length > 0)) {
    throw new UsageError(
      '--none takes every permission away: give no --publish, --consume or --manage with it',
    );
  }
  return { publish: [], consume: [], manage: [] };
}

function describe(permissions: Permissions): string[] {
  return [permissions.publish, permissions.consume, permissions.manage].map((patterns) =>
    patterns.length === 0 ? '-' : patterns.join(','),
  );
}
