export type {
  OpsOptions,
  ServiceConnections,
  ServiceContext,
  ServiceContextOptions,
} from "./context.js";
export { openServiceContext } from "./context.js";
export { failpoints, failpointsEnv } from "./failpoints.js";
export type {
  RunningService,
  RunServiceOptions,
  ServiceConfig,
  StoppableService,
} from "./run-service.js";
export { runService } from "./run-service.js";
