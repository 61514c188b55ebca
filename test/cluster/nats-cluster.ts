import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/processes.js";
import { restartable } from "../support/servers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ClusterNode {
  name: string;
  url: string;
  monitorUrl: string;
  running(): boolean;
  /** SIGKILL (a crash) by default; waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again with its store and waits until it answers. */
  start(): Promise<void>;
  output(): string;
}

export interface NatsCluster {
  nodes: ClusterNode[];
  /** Every node's client URL, comma-separated (the `NATS_URL` of the services). */
  url: string;
  /** The node that leads the JetStream meta group now, if any answers. */
  metaLeader(): Promise<string | undefined>;
  /** The node that leads a stream's raft group now (asked of any running node). */
  streamLeader(stream: string): Promise<string | undefined>;
  /** Waits until every running node sees a meta leader and the cluster has `size` peers. */
  waitForQuorum(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const command = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

interface Jsz {
  meta_cluster?: { leader?: string; cluster_size?: number; replicas?: Array<{ current?: boolean }> };
  account_details?: Array<{
    stream_detail?: Array<{ name: string; cluster?: { leader?: string } }>;
  }>;
}

async function jsz(node: ClusterNode, query = ""): Promise<Jsz | undefined> {
  if (!node.running()) return undefined;
  try {
    const response = await fetch(`${node.monitorUrl}/jsz${query}`, { signal: AbortSignal.timeout(2000) });
    return response.ok ? ((await response.json()) as Jsz) : undefined;
  } catch {
    return undefined;
  }
}

export async function startNatsCluster(
  options: { size?: number; label?: string } = {},
): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const root = mkdtempSync(join(tmpdir(), `${options.label ?? "cluster"}-nats-`));
  const ports: Array<{ client: number; route: number; monitor: number }> = [];
  for (let index = 0; index < size; index++)
    ports.push({ client: await freePort(), route: await freePort(), monitor: await freePort() });
  const clusterName = `ar-${Math.random().toString(36).slice(2, 8)}`;

  const nodes: ClusterNode[] = ports.map((port, index) => {
    const name = `n${index + 1}`;
    const storeDir = join(root, name);
    mkdirSync(storeDir, { recursive: true });
    const routes = ports
      .filter((_, other) => other !== index)
      .map((other) => `nats://127.0.0.1:${other.route}`)
      .join(",");
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      String(port.client),
      "-m",
      String(port.monitor),
      "-js",
      "-sd",
      storeDir,
      "--server_name",
      name,
      "--cluster_name",
      clusterName,
      "--cluster",
      `nats://127.0.0.1:${port.route}`,
      "--routes",
      routes,
    ];
    const monitorUrl = `http://127.0.0.1:${port.monitor}`;
    // the client port answers as soon as the process listens; JetStream catches up afterwards
    const server = restartable(
      {
        what: `nats-server ${name}`,
        command,
        args,
        cwd: root,
        ready: () => fetch(`${monitorUrl}/varz`).then((response) => response.ok),
      },
      `nats://127.0.0.1:${port.client}`,
      () => undefined, // the cluster's close removes every store
    );
    return { name, monitorUrl, ...server };
  });

  const metaLeader = async () => {
    for (const node of nodes) {
      const leader = (await jsz(node))?.meta_cluster?.leader;
      if (leader) return leader;
    }
    return undefined;
  };
  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((node) => node.url).join(","),
    metaLeader,
    streamLeader: async (stream) => {
      for (const node of nodes) {
        const details = await jsz(node, "?streams=true");
        for (const account of details?.account_details ?? [])
          for (const detail of account.stream_detail ?? [])
            if (detail.name === stream && detail.cluster?.leader) return detail.cluster.leader;
      }
      return undefined;
    },
    waitForQuorum: async (timeoutMs = 60_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const views = await Promise.all(nodes.filter((node) => node.running()).map((node) => jsz(node)));
        const ready = views.every(
          (view) => view?.meta_cluster?.leader && (view.meta_cluster.cluster_size ?? 0) >= size,
        );
        if (ready && views.length > 0) return;
        if (Date.now() > until)
          throw new Error(`no JetStream meta leader in ${timeoutMs} ms:\n${nodes[0]!.output().slice(-3000)}`);
        await sleep(250);
      }
    },
    close: async () => {
      await Promise.all(nodes.map((node) => node.stop("SIGTERM")));
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((node) => node.start()));
    await cluster.waitForQuorum();
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}
