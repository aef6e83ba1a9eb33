/**
 * Runs before every test file. Property tests (fast-check) use a random seed locally, so each run may
 * find something new; under CI=true the seed is fixed (VIRTNET_FC_SEED overrides it) so a CI result is
 * reproducible. A failing property always prints its seed and path.
 */
import fc from 'fast-check';

if (process.env.CI === 'true' || process.env.VIRTNET_FC_SEED) {
  const seed = Number(process.env.VIRTNET_FC_SEED ?? 20261127);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
}
