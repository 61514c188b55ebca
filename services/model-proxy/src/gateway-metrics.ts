import { boundedLabel, type Metrics } from "@agent-runtime/telemetry";

type Counter = ReturnType<Metrics["counter"]>;
type Histogram = ReturnType<Metrics["histogram"]>;
type Gauge = ReturnType<Metrics["gauge"]>;

export interface GatewayMetrics {
  requests: Counter;
  latency: Histogram;
  ttft: Histogram;
  tokens: Counter;
  cost: Counter;
  retries: Counter;
  fallbacks: Counter;
  breaker: Gauge;
  limited: Counter;
  classifier: Counter;
  failures: Counter;
  inFlight: Gauge;
  tenantTokens: Counter;
  tenantCost: Counter;
  /** A tenant's label value: bounded cardinality, the tenants past the first 20 share `other`. */
  tenant: (tenant: string) => string;
}

/** The model-proxy's Prometheus series. */
export function createGatewayMetrics(m: Metrics): GatewayMetrics {
  return {
    requests: m.counter("model_requests_total", "model.chat calls", [
      "tier",
      "model",
      "provider",
      "status",
      "cached",
    ]),
    latency: m.histogram("model_request_seconds", "model.chat latency", ["tier", "cached"]),
    ttft: m.histogram("model_ttft_seconds", "time to first token of streamed calls", ["model"]),
    tokens: m.counter("model_tokens_total", "tokens by kind", ["model", "kind"]),
    cost: m.counter("model_cost_usd_total", "cost in USD", ["model"]),
    retries: m.counter("model_retries_total", "provider retries", ["provider"]),
    fallbacks: m.counter("model_fallbacks_total", "fallbacks along a tier chain", ["tier"]),
    breaker: m.gauge("model_breaker_open", "1 when the provider's breaker is open", ["provider"]),
    limited: m.counter("model_limit_waits_total", "calls that waited for or skipped a provider limit", [
      "provider",
      "limit",
      "priority",
    ]),
    classifier: m.counter("model_classifier_total", "complexity classifier calls by outcome", ["outcome"]),
    failures: m.counter(
      "model_failures_total",
      "model.chat calls that failed, by the model and provider tried",
      ["model", "provider", "code"],
    ),
    inFlight: m.gauge("model_in_flight", "model.chat calls being answered"),
    tenantTokens: m.counter(
      "model_tenant_tokens_total",
      "tokens by tenant (top tenants, then other) and kind",
      ["tenant", "kind"],
    ),
    tenantCost: m.counter("model_tenant_cost_usd_total", "cost in USD by tenant (top tenants, then other)", [
      "tenant",
    ]),
    tenant: boundedLabel(),
  };
}
