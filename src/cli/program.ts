/**
 * The `s3-csv-converter` command line: wires the format registry and AWS clients into each command.
 * Loaded by main.ts once the Node version is known to be new enough.
 */
import { Command } from 'commander';
import { createAwsClients, type AwsClients } from '../aws.js';
import { formatPluginModules, SettingsError } from '../config/settings.js';
import { loadFormats } from '../formats/plugins.js';
import { registerBackfillCommand } from './backfill.js';
import { registerConvertCommand } from './convert.js';
import { registerDlqCommand } from './dlq.js';
import { registerSchemaCommand } from './schema.js';
import { registerServeCommand } from './serve.js';
import { registerSetupCommand } from './setup.js';

// The process must never die of a stray rejection; it is reported and the exit code says so.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}\n`);
  process.exitCode = 1;
});

let clients: AwsClients | undefined;
const lazyClients = () => (clients ??= createAwsClients());
// The formats every command knows (the built-in ones, and FORMAT_PLUGINS') decide the options it offers.
let registry;
try {
  registry = await loadFormats(formatPluginModules());
} catch (error) {
  process.stderr.write(`${error instanceof SettingsError ? error.message : `invalid setting FORMAT_PLUGINS: ${(error as Error).message}`}\n`);
  process.exit(2);
}

const program = new Command('s3-csv-converter')
  .description('Turns CSV files landing in S3 into Parquet and Avro.')
  .showHelpAfterError();

registerConvertCommand(program, { registry, clients: lazyClients });
registerServeCommand(program, { registry });
registerSetupCommand(program, { clients: lazyClients });
registerDlqCommand(program, { clients: lazyClients });
registerBackfillCommand(program, { registry });
registerSchemaCommand(program, { clients: lazyClients });

try {
  await program.parseAsync();
} catch (error) {
  process.stderr.write(`error: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  clients?.destroy();
}
