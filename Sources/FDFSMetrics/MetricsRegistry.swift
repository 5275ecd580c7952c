import CoreMetrics
import Prometheus

/// One daemon's metrics: a Prometheus collector registry and the swift-metrics factory that
/// feeds it. Metrics are made with swift-metrics' types and this ``factory`` (never the global
/// bootstrap, so several daemons, or many tests, in one process keep their numbers apart), and
/// ``exposition()`` renders them in the Prometheus text format 0.0.4.
public final class MetricsRegistry: Sendable {
    /// The registry the metrics live in.
    public let registry: PrometheusCollectorRegistry
    /// Pass to `Counter(label:dimensions:factory:)`, `Gauge(…)`, `Timer(…)`.
    public let factory: any MetricsFactory

    /// `durationBuckets` maps a timer's label to its histogram buckets (others get
    /// swift-prometheus's defaults).
    public init(durationBuckets: [String: [Duration]] = [:]) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = durationBuckets
        self.registry = registry
        self.factory = factory
    }

    /// The Prometheus text exposition of every metric made with ``factory``.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
