/** The `serve` command: validate every setting, start the service, drain on SIGTERM/SIGINT. */
import type { Command } from 'commander';
import { loadSettings, SettingsError } from '../config/settings.js';
import { checkFormatNames, loadFormatOptions } from '../config/format-settings.js';
import type { FormatRegistry } from '../formats/registry.js';
import { startService, StartupError } from '../service/serve.js';
import { createLogger } from '../service/log.js';

export function registerServeCommand(program: Command, deps: { registry: FormatRegistry }): void {
  program
    .command('serve')
    .description('consume S3 notifications from SQS and convert each object (settings come from the environment; see README)')
    .option('--pretty', 'human-readable logs (default when stdout is a terminal)')
    .action(async (flags: { pretty?: boolean }) => {
      let settings;
      try {
        settings = loadSettings(flags.pretty ? { ...process.env, LOG_PRETTY: 'true' } : process.env);
        checkFormatNames(settings.formats, deps.registry);
        loadFormatOptions(deps.registry);
      } catch (error) {
        if (error instanceof SettingsError) {
          process.stderr.write(`${error.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
      const logger = createLogger({ level: settings.logLevel, pretty: settings.logPretty });
      process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection (kept running)'));
      let service;
      try {
        service = await startService(settings, deps.registry, logger);
      } catch (error) {
        logger.fatal({ err: error }, error instanceof StartupError ? error.message : 'start-up failed');
        process.exitCode = error instanceof StartupError ? 2 : 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals) => {
          logger.info({ signal }, 'signal received');
          service.stop().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'error while stopping');
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      });
      logger.flush?.();
      // Whatever might still hold the event loop (a send the stop timeout cut short) must not keep
      // the process past the stop timeout: exit once the logs are out.
      setTimeout(() => process.exit(), 1_000).unref();
    });
}
