/**
 * What a user would write without Slipway: Fastify 5 parses the V2 JSON body, the handler builds
 * an `ort.Tensor` and awaits `session.run` on the main thread (no worker threads, no batching),
 * then answers V2 JSON. It is the baseline Slipway must not lose to at concurrency 1.
 *
 *   node dist/bench/servers/naive-fastify.js --port 0 --model bench/models/logreg30/1/model.onnx
 */
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';

interface V2Input {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, model: { type: 'string' } },
});
if (!values.model) throw new Error('--model <path to model.onnx> is required');

const session = await ort.InferenceSession.create(values.model);
const app = Fastify();

app.post<{ Params: { model: string }; Body: { id?: string; inputs: V2Input[] } }>(
  '/v2/models/:model/infer',
  async (req) => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of req.body.inputs) {
      feeds[input.name] = new ort.Tensor('float32', Float32Array.from(input.data.flat()), input.shape);
    }
    const results = await session.run(feeds);
    return {
      model_name: req.params.model,
      id: req.body.id,
      outputs: Object.entries(results).map(([name, t]) => ({
        name,
        datatype: t.type === 'int64' ? 'INT64' : 'FP32',
        shape: t.dims,
        data: Array.from(t.data as ArrayLike<number | bigint>, Number),
      })),
    };
  },
);

await app.listen({ port: Number(values.port), host: '127.0.0.1' });
process.stdout.write(`listening on http://127.0.0.1:${(app.server.address() as AddressInfo).port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
