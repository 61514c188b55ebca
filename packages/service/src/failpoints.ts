import { z } from "zod";

/**
 * Crash points for fault tests: a worker started with `FAILPOINTS=<name>` (a comma list of the
 * names its service declares) SIGKILLs itself when its work first reaches that point, so a test
 * can kill it at the worst moment (between two writes, between a claim and an act) instead of a
 * friendly one. Unset in production: then a failpoint costs one call of an empty function.
 */
export function failpointsEnv<const Name extends string>(names: readonly [Name, ...Name[]]) {
  return z
    .string()
    .default("")
    .transform((value) =>
      value
        .split(",")
        .map((name) => name.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(names)));
}

/** The function a service calls at each of its crash points; it kills the process at armed ones. */
export function failpoints<Name extends string>(enabled: readonly Name[]): (name: Name) => void {
  const armed = new Set<string>(enabled);
  if (armed.size === 0) return () => undefined;
  return (name) => {
    if (armed.has(name)) process.kill(process.pid, "SIGKILL");
  };
}
