import * as grpc from '@grpc/grpc-js';
import type { Scope } from '../../auth/index.js';
import { GrpcStatus, toSlipwayError } from '../../errors/index.js';
import { Cancellation, type DataPlane, type TransportTimes } from '../../inference/index.js';
import {
  authorizationOf,
  type GrpcLogger,
  grpcTransport,
  inferOne,
  toServiceError,
  undecodableError,
  untilDeadline,
} from './grpc-calls.js';
import type { ModelInferRequestMsg, ModelInferResponseMsg } from './grpc-codec.js';

/** A request's place in the stream's answer order; its transport times when it is traced. */
interface AnswerSlot {
  msg?: StreamResponseMsg;
  transport?: TransportTimes;
}

/**
 * Most requests of one stream read and not yet answered. Beyond it the stream stops reading, so
 * HTTP/2 flow control holds the client back instead of the server buffering without bound; the
 * data plane's own queue bound (RESOURCE_EXHAUSTED) still applies to what is read.
 */
export const MAX_STREAM_IN_FLIGHT = 256;

/** A ModelStreamInferResponse: exactly one of the two is set. */
interface StreamResponseMsg {
  error_message?: string;
  infer_response?: ModelInferResponseMsg;
}

type Authorize = (authorization: string | undefined, scope: Scope) => unknown;

/** The server's open inference streams, so that shutdown can end them once they have answered. */
export class InferStreams {
  private readonly open = new Set<InferStream>();
  private closing = false;

  get size(): number {
    return this.open.size;
  }

  /** Serves one ModelStreamInfer call (see InferStream). */
  serve(
    plane: DataPlane,
    call: grpc.ServerDuplexStream<ModelInferRequestMsg, StreamResponseMsg>,
    logger: GrpcLogger | undefined,
    authorize: Authorize | undefined,
  ): void {
    const method = call.getPath();
    const fail = (err: unknown): void => {
      call.emit('error', toServiceError(err, method, logger));
    };
    if (this.closing) {
      call.emit('error', { code: GrpcStatus.UNAVAILABLE, details: 'the server is shutting down' });
      return;
    }
    const start = () => {
      if (call.cancelled) return;
      const stream = new InferStream(plane, call, logger, () => this.open.delete(stream));
      this.open.add(stream);
      if (this.closing) stream.stop();
    };
    if (!authorize) {
      start();
      return;
    }
    let checked: unknown;
    try {
      checked = authorize(authorizationOf(call), 'predict');
    } catch (err) {
      fail(err);
      return;
    }
    if (checked instanceof Promise) checked.then(start, fail);
    else start();
  }

  /** Every stream stops reading and ends once the requests it has read are answered. */
  close(): void {
    this.closing = true;
    for (const s of this.open) s.stop();
  }
}

/**
 * Triton's ModelStreamInfer: a bidirectional stream of ModelInferRequest messages, each answered
 * on the stream by a ModelStreamInferResponse carrying either its `infer_response` or its
 * `error_message` and `id` (a failed request does not end the stream). Requests run
 * concurrently, and their answers are written in the order the requests came, as Triton answers
 * a model that is not decoupled. When the client ends its
 * side the call ends OK after the last answer; a cancelled call cancels what it still has
 * running; at shutdown the stream stops reading, answers what it has read, and ends
 * UNAVAILABLE if the client had not ended its side (so unread requests are known to be unrun).
 */
class InferStream {
  /** Requests read and not yet answered on the stream, in the order they were read. */
  private readonly answers: AnswerSlot[] = [];
  private readonly running = new Set<Cancellation>();
  private inputEnded = false;
  private stopping = false;
  private writeBlocked = false;
  private paused = false;
  private done = false;

  constructor(
    private readonly plane: DataPlane,
    private readonly call: grpc.ServerDuplexStream<ModelInferRequestMsg, StreamResponseMsg>,
    private readonly logger: GrpcLogger | undefined,
    private readonly onDone: () => void,
  ) {
    call.on('data', (msg: ModelInferRequestMsg) => this.request(msg));
    call.on('end', () => {
      this.inputEnded = true;
      this.settle();
    });
    call.on('drain', () => {
      this.writeBlocked = false;
      this.flow();
    });
    call.on('cancelled', () => {
      for (const c of this.running) c.fire();
      this.finish();
    });
  }

  /** Shutdown: read nothing more; end once what was read is answered. */
  stop(): void {
    this.stopping = true;
    this.flow();
    this.settle();
  }

  private request(msg: ModelInferRequestMsg): void {
    if (this.done) return;
    const transport = grpcTransport(this.plane);
    const slot: AnswerSlot = transport ? { transport } : {};
    this.answers.push(slot);
    this.flow();
    const undecodable = undecodableError(msg);
    if (undecodable) {
      this.answer(slot, { error_message: undecodable.message });
      return;
    }
    const cancel = new Cancellation();
    this.running.add(cancel);
    inferOne(this.plane, msg, cancel, untilDeadline(this.call.getDeadline()), transport)
      .then(
        (res) => this.answer(slot, { infer_response: res }),
        (err) => {
          const e = toSlipwayError(err);
          if (e.grpcStatus === GrpcStatus.INTERNAL) {
            this.logger?.error({ err, method: this.call.getPath() }, 'gRPC stream request failed');
          }
          // The request's id travels with its error, as Triton sends it.
          this.answer(slot, {
            error_message: e.message,
            ...(msg.id ? { infer_response: { id: msg.id } as ModelInferResponseMsg } : {}),
          });
        },
      )
      .finally(() => this.running.delete(cancel));
  }

  /** Fills a request's answer, then writes every answer ready at the head, in request order. */
  private answer(slot: AnswerSlot, msg: StreamResponseMsg): void {
    slot.msg = msg;
    while (this.answers.length > 0 && this.answers[0]!.msg) {
      const next = this.answers.shift()!;
      if (next.transport) next.transport.sendStart = performance.now();
      if (!this.done && !this.call.cancelled && !this.call.write(next.msg!)) this.writeBlocked = true;
      if (next.transport) next.transport.sendEnd = performance.now();
    }
    this.flow();
    this.settle();
  }

  /** Reads while the stream has room: not stopping, answers flowing out, requests under the bound. */
  private flow(): void {
    if (this.done) return;
    const hold = this.stopping || this.writeBlocked || this.answers.length >= MAX_STREAM_IN_FLIGHT;
    if (hold && !this.paused) {
      this.paused = true;
      this.call.pause();
    } else if (!hold && this.paused) {
      this.paused = false;
      this.call.resume();
    }
  }

  /** Ends the call once nothing is running and the client has ended its side (or shutdown stops it). */
  private settle(): void {
    if (this.done || this.answers.length > 0) return;
    if (this.inputEnded) {
      this.finish();
      this.call.end();
    } else if (this.stopping) {
      this.finish();
      this.call.emit('error', {
        code: GrpcStatus.UNAVAILABLE,
        details: 'the server is shutting down; requests not answered on this stream were not run',
        metadata: new grpc.Metadata(),
      });
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }
}
