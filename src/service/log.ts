/**
 * The service's logger: JSON lines for CloudWatch Logs by default, pino-pretty (in pino's transport
 * worker, off the main thread) for people at a terminal. Per-file context comes from
 * `logger.child({ bucket, key, messageId })`.
 */
import { pino, type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

export interface LoggerOptions {
  level: LevelWithSilent;
  pretty: boolean;
  /** Where JSON lines go instead of stdout (tests); ignored when `pretty`. */
  destination?: DestinationStream;
}

export function createLogger({ level, pretty, destination }: LoggerOptions): Logger {
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  const options = {
    level,
    // Level names and ISO times read better in CloudWatch Logs Insights than numbers and epoch millis.
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
