"""Prometheus counters and histograms whose values live in Redis hashes.

One hash per metric family and scope (`flowhq:metrics:<scope>:<name>`), one field per
series: the label values joined by `|`, and for a histogram `|b<i>` per bucket (not
cumulative; `i == len(buckets)` is +Inf) and `|sum_us` (the sum in microseconds, so
every field is an integer and HINCRBY adds it). Many processes add to the same
hash (flowhq/metric_buffer.py); whoever serves /metrics reads it with one HGETALL
per family and turns it into Prometheus families here. Label values must not
contain `|`.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowhq.metric_buffer import metric_buffer

if TYPE_CHECKING:
    from prometheus_client.core import Metric

SEP = "|"


def hash_key(scope: str, name: str) -> str:
    return f"flowhq:metrics:{scope}:{name}"


def _field(values: Iterable[object]) -> str:
    return SEP.join(str(value) for value in values)


@dataclass(frozen=True)
class RedisCounter:
    name: str  # without `_total`; Prometheus' client adds it
    documentation: str
    labels: tuple[str, ...]

    def inc(self, scope: str, *values: object, amount: int = 1) -> None:
        metric_buffer().add(hash_key(scope, self.name), _field(values), amount)

    def family(self, raw: Mapping[bytes, bytes], extra: Mapping[str, str] | None = None) -> Metric:
        from prometheus_client.core import CounterMetricFamily  # only where a scrape is served (~2 MB)

        extra = dict(extra or {})
        family = CounterMetricFamily(self.name, self.documentation, labels=[*self.labels, *extra])
        for field, value in sorted(raw.items()):
            parts = field.decode().split(SEP)
            if len(parts) == len(self.labels):
                family.add_metric([*parts, *extra.values()], int(value))
        return family


@dataclass(frozen=True)
class RedisHistogram:
    name: str  # in base units, e.g. `..._seconds`
    documentation: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]

    def observe(self, scope: str, *values: object, seconds: float) -> None:
        key, base = hash_key(scope, self.name), _field(values)
        index = bisect.bisect_left(self.buckets, seconds)
        buffer = metric_buffer()
        buffer.add(key, f"{base}{SEP}b{index}")
        buffer.add(key, f"{base}{SEP}sum_us", max(0, round(seconds * 1_000_000)))

    def family(self, raw: Mapping[bytes, bytes], extra: Mapping[str, str] | None = None) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        extra = dict(extra or {})
        counts: defaultdict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * (len(self.buckets) + 1))
        sums: defaultdict[tuple[str, ...], int] = defaultdict(int)
        for field, value in raw.items():
            *parts, part = field.decode().split(SEP)
            if len(parts) != len(self.labels):
                continue
            labels = tuple(parts)
            if part == "sum_us":
                sums[labels] += int(value)
            elif part.startswith("b") and part[1:].isdigit() and int(part[1:]) <= len(self.buckets):
                counts[labels][int(part[1:])] += int(value)
        family = HistogramMetricFamily(self.name, self.documentation, labels=[*self.labels, *extra])
        for labels in sorted(counts):
            cumulative, running = [], 0
            for bound, count in zip([*self.buckets, float("inf")], counts[labels], strict=True):
                running += count
                cumulative.append((_bound(bound), running))
            family.add_metric([*labels, *extra.values()], cumulative, sum_value=sums[labels] / 1_000_000)
        return family


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))
