/**
 * Writes test/replay/workload.json from a seed: `node --import tsx test/replay/generate.ts [seed]`.
 * The same seed always gives the same file.
 */
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { GradedQuestion } from "@agent-runtime/testkit";
import {
  orderStatus,
  type ReplayDocument,
  type ReplayTask,
  stockLevel,
  WORKLOAD_PATH,
  type Workload,
} from "./workload.js";

/** mulberry32: a small seeded generator. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** CloudEvents of batch work (each: summarize 50 tickets), published in one burst beside the chat traffic. */
const BATCH_EVENTS = 24;

const TOPICS = [
  ["refund window", "Refunds are accepted within the window coded REFUND-30D."],
  ["wifi password", "The guest wifi password is WIFI-4417."],
  ["support hours", "Phone support runs weekdays under schedule HOURS-0918."],
  ["warranty", "Devices carry the warranty plan WARRANTY-2Y24."],
  ["shipping fee", "Standard shipping uses tariff SHIP-0499."],
  ["password reset", "Password resets go through flow RESET-7731."],
  ["invoice copy", "Invoice copies are issued under form INVOICE-C12."],
  ["data export", "Data exports are prepared under procedure EXPORT-4410."],
  ["plan upgrade", "Upgrades take effect under rule UPGRADE-0101."],
  ["account deletion", "Account deletion follows process DELETE-9090."],
  ["student discount", "Student discounts use coupon STUDENT-1515."],
  ["device recycling", "Old devices are recycled under scheme RECYCLE-3030."],
] as const;

const PHRASINGS = [
  (topic: string) => `What is your ${topic} policy?`,
  (topic: string) => `Quick question about the ${topic}: what applies to me?`,
  (topic: string) => `Can you tell me how the ${topic} works here?`,
];

const FILLER = [
  "Tell me one idea for a relaxed weekend, something cheap and close to home.",
  "I have been thinking about reorganising my desk so it feels less cluttered; any one tip?",
  "Give me a short motivating sentence for a long Monday of meetings.",
  "What is a good way to remember to drink water during the workday?",
  "Suggest one simple dinner I could cook in twenty minutes with pasta.",
  "Name a board game that works well for three players on a rainy evening.",
  "How do I keep houseplants alive when I travel for a week?",
  "Recommend a podcast genre for a long train ride, no specific show needed.",
];

export function generate(seed = 15): Workload {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const tenants = ["acme", "globex", "initech"];
  const usersPerTenant = 15;
  const usersOf = (tenant: string) =>
    Array.from({ length: usersPerTenant }, (_, index) => `${tenant}-u${index}`);
  const questions = new Map<string, GradedQuestion>();
  const tasks: ReplayTask[] = [];
  const documents: ReplayDocument[] = [];
  let taskNumber = 0;
  const add = (task: ReplayTask) => tasks.push({ ...task, id: `t${String(taskNumber++).padStart(4, "0")}` });

  const knowledgeBase = [
    "You are the support assistant of a consumer electronics shop. Answer from the policies below; be brief.",
    ...TOPICS.map(
      ([topic, fact]) =>
        `Policy on ${topic}: ${fact} ${"Staff explain this policy plainly, confirm the customer's situation, and never promise exceptions that the policy does not allow. ".repeat(4)}`,
    ),
  ].join("\n\n");

  // FAQ traffic: repeated and near-repeated questions, half of the phrasings deterministic
  const faq: ReplayTask[] = [];
  for (let index = 0; index < 110; index++) {
    const tenant = pick(tenants);
    const user = `${tenant}-u${Math.floor(next() * 6)}`;
    const topicIndex = Math.floor(next() * TOPICS.length);
    const phrasing = Math.floor(next() * PHRASINGS.length);
    const [topic, fact] = TOPICS[topicIndex]!;
    const key = `faq-${topicIndex}-${phrasing}`;
    const code = fact.match(/[A-Z]+-[A-Z0-9]+/)![0];
    questions.set(key, { key, facts: [code], answer: `Per our policy: ${fact}` });
    faq.push({
      id: "",
      kind: "faq",
      tenant,
      user,
      agent: "support",
      question: key,
      input: `[[q:${key}]] ${PHRASINGS[phrasing]!(topic)}`,
      ...(phrasing !== 2 ? { temperature: 0 } : {}),
    });
  }

  // repeated lookups (the same orders asked about by many users)
  const orders = ["A-1001", "A-1002", "A-1003", "B-2001", "B-2002", "C-3001", "C-3002", "C-3003"];
  const lookups: ReplayTask[] = [];
  for (let index = 0; index < 30; index++) {
    const tenant = pick(tenants);
    const order = pick(orders);
    const key = `lookup-${order}`;
    const tracking = orderStatus(order).match(/TRK-\d+/)![0];
    questions.set(key, { key, facts: [tracking], tools: [{ name: "order_lookup", arguments: { order } }] });
    lookups.push({
      id: "",
      kind: "lookup",
      tenant,
      user: pick(usersOf(tenant)),
      agent: "support",
      question: key,
      input: `[[q:${key}]] Where is my order ${order}?`,
      temperature: 0,
    });
  }

  // simple tasks: classify, extract, route
  const simple: ReplayTask[] = [];
  const verbs = ["Classify", "Extract the reference from", "Route to the right team"];
  for (let index = 0; index < 60; index++) {
    const tenant = pick(tenants);
    const reference = `REF-${1000 + index}`;
    const key = `simple-${index}`;
    questions.set(key, { key, facts: [reference] });
    simple.push({
      id: "",
      kind: "simple",
      tenant,
      user: pick(usersOf(tenant)),
      agent: "triage",
      question: key,
      input: `[[q:${key}]] ${pick(verbs)} this message: "${pick(FILLER)} My case is ${reference}."`,
      ...(index % 2 === 0 ? { temperature: 0 } : {}),
    });
  }

  // hard multi-step tasks: two lookups, a plan and a delegate
  const skus = ["SKU-100", "SKU-200", "SKU-300", "SKU-400"];
  const hard: ReplayTask[] = [];
  for (let index = 0; index < 20; index++) {
    const tenant = pick(tenants);
    const order = pick(orders);
    const sku = pick(skus);
    const key = `hard-${index}`;
    questions.set(key, {
      key,
      hard: true,
      facts: [orderStatus(order).match(/TRK-\d+/)![0], stockLevel(sku).match(/LOT-\d+/)![0]],
      tools: [
        { name: "order_lookup", arguments: { order } },
        { name: "stock_lookup", arguments: { sku } },
      ],
      delegate: { agent: "researcher" },
    });
    hard.push({
      id: "",
      kind: "hard",
      tenant,
      user: pick(usersOf(tenant)),
      agent: "analyst",
      question: key,
      input: `[[q:${key}]] Analyse why order ${order} may be late. Compare it with the stock of ${sku}. Then recommend a strategy step by step, with the trade-offs.`,
    });
  }

  // a side-effecting webhook that must run once per task
  const webhooks: ReplayTask[] = [];
  for (let index = 0; index < 15; index++) {
    const tenant = pick(tenants);
    const key = `ticket-${index}`;
    questions.set(key, {
      key,
      facts: [`TCK-${key}`],
      tools: [{ name: "create_ticket", arguments: { ref: key, summary: "customer callback requested" } }],
    });
    webhooks.push({
      id: "",
      kind: "webhook",
      tenant,
      user: pick(usersOf(tenant)),
      agent: "ops",
      question: key,
      input: `[[q:${key}]] Please open a callback ticket for me.`,
    });
  }

  // batch work as CloudEvents: summarize 50 tickets
  const batch: ReplayTask[] = [];
  for (let index = 0; index < BATCH_EVENTS; index++) {
    const tenant = tenants[index % tenants.length]!;
    const key = `batch-${index}`;
    const tickets = Array.from(
      { length: 50 },
      (_, n) => `BT${index}-${String(n).padStart(3, "0")}: ${pick(FILLER).slice(0, 40)}`,
    );
    questions.set(key, { key, facts: [`BT${index}-000`, `BT${index}-025`, `BT${index}-049`] });
    batch.push({
      id: "",
      kind: "batch",
      tenant,
      user: `${tenant}-batch`,
      agent: "digest",
      question: key,
      input: `[[q:${key}]] Summarize these 50 tickets`,
      event: {
        type: "replay.tickets.batch",
        data: { instruction: `[[q:${key}]] Summarize these 50 tickets`, tickets },
      },
    });
  }

  // long threads whose late questions need an early fact or a long-term document
  const threads: ReplayTask[][] = [];
  const lengths = [40, 80, 120];
  for (const [threadIndex, length] of lengths.entries()) {
    const tenant = tenants[threadIndex]!;
    const user = `${tenant}-u${10 + threadIndex}`;
    const thread = `thr${threadIndex}`;
    const locker = `LOCKER-${5500 + threadIndex * 11}`;
    const perDiem = `PERDIEM-${8800 + threadIndex * 7}`;
    documents.push({
      tenant,
      user,
      id: `travel-policy-${threadIndex}`,
      text: `Travel policy for field staff. Hotel nights need approval from the team lead. The daily per-diem allowance code for trips is ${perDiem}. Receipts are filed within ten days.`,
    });
    const turns: ReplayTask[] = [];
    for (let turn = 0; turn < length; turn++) {
      const key = `${thread}-t${turn}`;
      let input: string;
      let facts: string[] = [];
      if (turn === 0)
        input = `Hi! Please keep in mind that my gym locker code is ${locker}. I will ask later.`;
      else if (turn === length - 6) {
        input = "What was my gym locker code again?";
        facts = [locker];
      } else if (turn === length - 3) {
        input = "What is the per-diem allowance code in the travel policy for trips?";
        facts = [perDiem];
      } else if (turn === length - 1) {
        input = "One last thing: remind me of my gym locker code.";
        facts = [locker];
      } else input = `${pick(FILLER)} ${pick(FILLER)}`;
      questions.set(key, { key, facts });
      turns.push({
        id: "",
        kind: "thread",
        tenant,
        user,
        agent: "companion",
        question: key,
        input: `[[q:${key}]] ${input}`,
        thread,
      });
    }
    threads.push(turns);
  }

  // interleave: threads turn by turn among the rest, batch events early in the run
  const rest = [...faq, ...lookups, ...simple, ...hard, ...webhooks];
  for (let index = rest.length - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1));
    [rest[index], rest[other]] = [rest[other]!, rest[index]!];
  }
  // a share of FAQ questions asked again by the same user later
  const repeats = faq.filter(() => next() < 0.3).map((task) => ({ ...task }));
  rest.push(...repeats);
  const longest = Math.max(...lengths);
  const stride = Math.ceil(rest.length / longest);
  let restIndex = 0;
  for (let turn = 0; turn < longest; turn++) {
    for (const turns of threads) if (turns[turn]) add(turns[turn]!);
    for (let count = 0; count < stride && restIndex < rest.length; count++) add(rest[restIndex++]!);
    if (turn === 10) for (const task of batch) add(task);
  }
  while (restIndex < rest.length) add(rest[restIndex++]!);

  return {
    seed,
    tenants,
    users: new Set(tasks.map((task) => task.user)).size,
    documents,
    questions: [...questions.values()],
    tasks,
    knowledgeBase,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const workload = generate(Number(process.argv[2] ?? 15));
  writeFileSync(WORKLOAD_PATH, `${JSON.stringify(workload, null, 1)}\n`);
  const kinds: Record<string, number> = {};
  for (const task of workload.tasks) kinds[task.kind] = (kinds[task.kind] ?? 0) + 1;
  console.log(`wrote ${WORKLOAD_PATH}: ${workload.tasks.length} tasks, ${workload.users} users`, kinds);
}
