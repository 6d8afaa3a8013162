import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CounterFamily, HistogramFamily, ServingMetrics } from '../src/metrics/index.js';

test('histograms render cumulative buckets, +Inf, sum and count', () => {
  const h = new HistogramFamily('x_seconds', 'help text', ['model'], [0.1, 1]);
  const c = h.labels('m"1');
  for (const v of [0.05, 0.1, 0.5, 3]) c.observe(v);
  assert.equal(
    h.render(),
    [
      '# HELP x_seconds help text',
      '# TYPE x_seconds histogram',
      'x_seconds_bucket{le="0.1",model="m\\"1"} 2',
      'x_seconds_bucket{le="1",model="m\\"1"} 3',
      'x_seconds_bucket{le="+Inf",model="m\\"1"} 4',
      'x_seconds_sum{model="m\\"1"} 3.65',
      'x_seconds_count{model="m\\"1"} 4',
      '',
    ].join('\n'),
  );
});

test('counters keep one child per label set', () => {
  const f = new CounterFamily('n_total', 'h', ['a', 'b']);
  f.labels('1', '2').inc();
  f.labels('1', '2').inc(2);
  f.labels('1', '3').inc();
  assert.match(f.render(), /n_total\{a="1",b="2"\} 3\nn_total\{a="1",b="3"\} 1\n$/);
});

test('the exposition holds the hot families and the load gauges', async () => {
  const m = new ServingMetrics(() => [{ model: 'm', version: '1', queueDepth: 3, inFlight: 5 }], {
    processMetrics: false,
  });
  m.request('m', '1', 'grpc', 504, 0.002, 0.001, 0.0005);
  m.batch('m', '1', 7);
  const text = await m.render();
  assert.match(
    text,
    /slipway_inference_requests_total\{model="m",version="1",protocol="grpc",status="504"\} 1/,
  );
  assert.match(text, /slipway_inference_batch_size_bucket\{le="8",model="m",version="1"\} 1/);
  assert.match(text, /slipway_inference_queue_depth\{model="m",version="1"\} 3/);
  assert.match(text, /slipway_inference_in_flight_requests\{model="m",version="1"\} 5/);
  // Every sample line is `name{labels} value` or `name value`.
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^[a-z_:][a-z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/i, line);
  }
});

test('the prediction log and response cache figures are read when the exposition is rendered', async () => {
  const m = new ServingMetrics(() => [], { processMetrics: false });
  const log = { queued: 4, written: 10, dropped: 1, failedFlushes: 0 };
  const cache = { bytes: 2048, entries: 3, evictions: 2 };
  m.attachPredictionLog(() => log);
  m.attachResponseCache(() => cache);
  log.written = 12;
  cache.evictions = 5;
  const text = await m.render();
  for (const line of [
    'slipway_prediction_log_queued 4',
    'slipway_prediction_log_written_rows_total 12',
    'slipway_prediction_log_dropped_rows_total 1',
    'slipway_prediction_log_failed_flushes_total 0',
    'slipway_response_cache_bytes 2048',
    'slipway_response_cache_entries 3',
    'slipway_response_cache_evictions_total 5',
  ]) {
    assert.ok(text.split('\n').includes(line), line);
  }
  assert.match(text, /# TYPE slipway_prediction_log_written_rows_total counter/);
  assert.match(text, /# TYPE slipway_response_cache_bytes gauge/);
});
