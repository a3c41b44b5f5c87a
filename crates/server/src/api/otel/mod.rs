//! `--enable-distributed-tracing` (3.5: `--experimental-enable-distributed-tracing`):
//! an OpenTelemetry span for every gRPC request, exported over OTLP/gRPC as etcd's
//! otelgrpc interceptors do (docs/adr/0010-distributed-tracing.md).
//!
//! ```text
//!  gRPC request ─▶ span.rs: extract W3C traceparent/baggage, start span
//!                  "etcdserverpb.KV/Range" (kind server, rpc.* and net.peer.* attributes)
//!              ─▶ the service ─▶ response body wrapped: the span ends when the body
//!                  does (streams included), with rpc.grpc.status_code from the trailers
//!  SdkTracerProvider: ParentBased(TraceIdRatio(rate / 1e6)), resource service.name
//!  (+ service.instance.id) ─▶ batch ─▶ OTLP/gRPC exporter (tonic) ─▶ --distributed-tracing-address
//! ```
//! Off (the default), no provider exists and the gRPC path does not look at tracing at
//! all (one `Option` check per request).

mod span;

use std::sync::Arc;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;

pub use span::TracedCall;

/// etcd's `maxSamplingRatePerMillion`.
const PER_MILLION: f64 = 1_000_000.0;

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("failed to set up distributed tracing: {0}")]
pub struct TracingSetupError(#[from] opentelemetry_otlp::ExporterBuildError);

/// The tracer the client ports share, and the provider to flush at shutdown.
#[derive(Clone)]
pub struct Tracing {
    tracer: Arc<opentelemetry_sdk::trace::SdkTracer>,
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracing")
    }
}

/// An OTLP endpoint: etcd's address is `host:port` (otlptracegrpc.WithEndpoint).
fn endpoint(address: &str) -> String {
    if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    }
}

/// etcd's `determineSampler` under `ParentBased`: rate 0 samples only what a sampled
/// parent asks for.
fn sampler(rate_per_million: i64) -> Sampler {
    let root = match rate_per_million {
        r if r <= 0 => Sampler::AlwaysOff,
        r => Sampler::TraceIdRatioBased(r as f64 / PER_MILLION),
    };
    Sampler::ParentBased(Box::new(root))
}

fn resource(cfg: &chorus_config::Config) -> Resource {
    let mut b =
        Resource::builder_empty().with_service_name(cfg.distributed_tracing_service_name.clone());
    if !cfg.distributed_tracing_instance_id.is_empty() {
        b = b.with_attribute(KeyValue::new(
            "service.instance.id",
            cfg.distributed_tracing_instance_id.clone(),
        ));
    }
    b.build()
}

impl Tracing {
    /// The tracer when tracing is on; must run inside the tokio runtime (the exporter's
    /// channel connects lazily on it).
    pub fn from_config(cfg: &chorus_config::Config) -> Result<Option<Tracing>, TracingSetupError> {
        if !cfg.enable_distributed_tracing {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint(&cfg.distributed_tracing_address))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(cfg))
            .with_sampler(sampler(cfg.distributed_tracing_sampling_rate))
            .build();
        let tracer = Arc::new(provider.tracer("go.etcd.io/etcd/server"));
        tracing::debug!(
            address = %cfg.distributed_tracing_address,
            service_name = %cfg.distributed_tracing_service_name,
            service_instance_id = %cfg.distributed_tracing_instance_id,
            "distributed tracing enabled"
        );
        Ok(Some(Tracing { tracer, provider }))
    }

    /// Starts the span of a gRPC request (`peer`: the client's `ip:port`, if known).
    pub fn start<B>(&self, req: &http::Request<B>, peer: Option<&str>) -> TracedCall {
        span::start(&self.tracer, req, peer)
    }

    /// Exports what is buffered and stops the exporter (at shutdown; blocking).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "failed to flush the last spans");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn etcds_address_form_becomes_an_http_endpoint() {
        assert_eq!(super::endpoint("localhost:4317"), "http://localhost:4317");
        assert_eq!(super::endpoint("http://a:1"), "http://a:1");
    }
}
