import { HostError, isHostError } from '../../errors/index.js';
import { EXIT_USAGE, printError } from './args.js';
import { buildCommand, create } from './build.js';
import { config } from './config.js';
import { act, isolate, list, register } from './plugins.js';
import { rollback, versions } from './releases.js';
import { COMMAND_USAGE } from './usage.js';

export { COMMAND_USAGE } from './usage.js';

/** Runs a command other than `serve`; returns the exit code. */
export async function runCommand(command: string, argv: string[]): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      const usage =
        command === 'push'
          ? (await import('./push.js')).PUSH_USAGE
          : command === 'token'
            ? (await import('./token.js')).TOKEN_USAGE
            : COMMAND_USAGE[command];
      if (usage === undefined) throw new HostError('PH_ERR_USAGE', `unknown command "${command}" (try plugin-host --help)`);
      console.log(usage);
      return 0;
    }
    switch (command) {
      case 'list':
        return await list(argv);
      case 'enable':
      case 'disable':
      case 'reload':
      case 'remove':
        return await act(command, argv);
      case 'register':
        return await register(argv);
      case 'isolate':
        return await isolate(argv);
      case 'config':
        return await config(argv);
      case 'versions':
        return await versions(argv);
      case 'rollback':
        return await rollback(argv);
      case 'new':
        return await create(argv);
      case 'build':
        return await buildCommand(argv);
      case 'push':
        return await (await import('./push.js')).push(argv);
      case 'token':
        return await (await import('./token.js')).token(argv);
      default:
        throw new HostError('PH_ERR_USAGE', `unknown command "${command}" (try plugin-host --help)`);
    }
  } catch (err) {
    printError(err);
    return isHostError(err, 'PH_ERR_USAGE') ? EXIT_USAGE : 1;
  }
}
