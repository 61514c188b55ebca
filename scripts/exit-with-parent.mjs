/**
 * Preloaded (`--import`) into each service `scripts/start.mjs` runs: when the start script goes
 * away by any means (even SIGKILL), the IPC channel to it closes and the service stops as on
 * SIGTERM (it drains), so no service is left running without its parent.
 */
if (process.channel) {
  // the channel alone must not keep the service alive
  process.channel.unref();
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
