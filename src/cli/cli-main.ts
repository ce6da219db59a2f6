/**
 * The Node entry of the training-side CLIs (train, generate): `--help`/`-h` prints the usage; a UsageError
 * prints its message and the usage (exit 2); any other failure prints one line (exit 1).
 */
import { UsageError } from '../train/options';

export function runCliMain(usage: string, main: (argv: string[]) => Promise<number>, argv: string[] = process.argv.slice(2)): void {
  const run = async (): Promise<number> => {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(usage);
      return 0;
    }
    return main(argv);
  };
  run().then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof UsageError) process.stderr.write(`error: ${e.message}\n\n${usage}`);
      // Expected failures (missing checkpoint, bad dataset) read best as one line; TRAIN_DEBUG=1 shows where.
      else process.stderr.write(`error: ${e instanceof Error ? (process.env.TRAIN_DEBUG ? (e.stack ?? e.message) : e.message) : String(e)}\n`);
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}
