/**
 * `deno task train`: ReSSL pretraining. The training command lands with the training issue; until
 * then this entry point says so and exits with status 2.
 *
 * @module
 */

if (import.meta.main) {
  console.error(
    "deno task train: not yet implemented (the training command lands with the training issue)",
  );
  Deno.exit(2);
}
