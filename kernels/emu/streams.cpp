// Streams, events and graphs of the emulated device. Work on a created stream
// waits in the stream's queue until something waits for it, so two streams
// are ordered only by what orders them on a GPU (events, synchronisation,
// the legacy default stream); runtime.hpp lists the rules.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "kernels/emu/device_state.hpp"
#include "kernels/emu/runtime.hpp"

namespace ladon::emu::detail {
namespace {

// Guards every queue; recursive because queued work may submit (a graph's).
std::recursive_mutex& queue_mutex() {
    static std::recursive_mutex mutex;
    return mutex;
}

bool is_capturing(cudaStream_t stream) {
    return !is_default_stream(stream) && device().streams.contains(stream) && stream->capturing;
}

// Runs `stream`'s queued work up to sequence number `last`, in order. Errors
// are the work's own to record (a kernel fault stays pending until read).
void run_stream(cudaStream_t stream, std::uint64_t last) {
    std::lock_guard lock(queue_mutex());
    while (!stream->queued.empty() && stream->queued.front().sequence <= last) {
        QueuedWork item = std::move(stream->queued.front());
        stream->queued.pop_front();
        item.work();
    }
}

// What waiting for `event` needs: its stream's work up to the record.
void wait_for(cudaEvent_t event) {
    std::lock_guard lock(queue_mutex());
    if (event->stream != nullptr && device().streams.contains(event->stream)) run_stream(event->stream, event->sequence);
}

// A call that waits for `stream` while it captures: CUDA refuses it and
// invalidates the capture.
cudaError_t refuse_while_capturing(cudaStream_t stream, const char* call) {
    if (!is_capturing(stream)) return cudaSuccess;
    stream->invalidated = true;
    return record_error(cudaErrorStreamCaptureUnsupported, std::string(call) + ": the stream is capturing a graph");
}

}  // namespace

bool is_default_stream(cudaStream_t stream) {
    return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

bool is_valid_stream(cudaStream_t stream) { return is_default_stream(stream) || device().streams.contains(stream); }

bool runs_later(cudaStream_t stream) { return !is_default_stream(stream) && device().streams.contains(stream); }

cudaError_t submit(cudaStream_t stream, std::function<cudaError_t()> work) {
    std::lock_guard lock(queue_mutex());
    if (is_capturing(stream)) {
        stream->recorded.push_back(std::move(work));
        return cudaSuccess;
    }
    if (!is_default_stream(stream)) {
        stream->queued.push_back({++stream->submitted, std::move(work)});
        return cudaSuccess;
    }
    run_queued_work(false);  // the legacy default stream waits for every blocking stream
    return work();
}

void run_queued_work(bool non_blocking_too) {
    std::lock_guard lock(queue_mutex());
    std::vector<cudaStream_t> streams = device().streams.all();
    std::sort(streams.begin(), streams.end(), [](cudaStream_t a, cudaStream_t b) { return a->created < b->created; });
    for (cudaStream_t stream : streams)
        if (non_blocking_too || !stream->non_blocking) run_stream(stream, stream->submitted);
}

}  // namespace ladon::emu::detail

using ladon::emu::detail::device;
using ladon::emu::detail::record_error;

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
    if (stream == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamCreate: null pointer");
    static std::uint64_t streams_created = 0;
    std::lock_guard lock(ladon::emu::detail::queue_mutex());
    *stream = device().streams.create();
    (*stream)->non_blocking = (flags & cudaStreamNonBlocking) != 0;
    (*stream)->created = ++streams_created;
    return cudaSuccess;
}

// The stream's queued work still runs, as on a GPU.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    std::lock_guard lock(ladon::emu::detail::queue_mutex());
    if (ladon::emu::detail::runs_later(stream)) ladon::emu::detail::run_stream(stream, stream->submitted);
    if (!device().streams.destroy(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: unknown stream");
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: unknown stream");
    if (const cudaError_t refused = ladon::emu::detail::refuse_while_capturing(stream, "cudaStreamSynchronize");
        refused != cudaSuccess)
        return refused;
    if (ladon::emu::detail::runs_later(stream)) ladon::emu::detail::run_stream(stream, stream->submitted);
    return ladon::emu::detail::pending_kernel_fault();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
    if (!ladon::emu::detail::is_valid_stream(stream) || !device().events.contains(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown stream or event");
    // `stream`'s later work runs after this point; the recording stream's
    // work up to the event runs now.
    ladon::emu::detail::wait_for(event);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
    if (event == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventCreate: null pointer");
    *event = device().events.create();
    (*event)->flags = flags;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!device().events.contains(event) || !ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown event or stream");
    if (ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorNotSupported, "cudaEventRecord: the emulator captures no events into graphs");
    std::lock_guard lock(ladon::emu::detail::queue_mutex());
    if (ladon::emu::detail::is_default_stream(stream)) {
        ladon::emu::detail::run_queued_work(false);
        event->stream = nullptr;
        event->recorded = std::chrono::steady_clock::now();
        return cudaSuccess;
    }
    event->stream = stream;
    event->sequence = stream->submitted + 1;
    return ladon::emu::detail::submit(stream, [event] {
        event->recorded = std::chrono::steady_clock::now();
        return cudaSuccess;
    });
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!device().events.contains(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: unknown event");
    ladon::emu::detail::wait_for(event);
    return ladon::emu::detail::pending_kernel_fault();
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
    if (milliseconds == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventElapsedTime: null pointer");
    if (!device().events.contains(start) || !device().events.contains(end))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: unknown event");
    ladon::emu::detail::wait_for(start);
    ladon::emu::detail::wait_for(end);
    if (!start->recorded || !end->recorded || (start->flags & cudaEventDisableTiming) ||
        (end->flags & cudaEventDisableTiming))
        return record_error(cudaErrorInvalidResourceHandle,
                            "cudaEventElapsedTime: an event was not recorded or was created without timing");
    *milliseconds = std::chrono::duration<float, std::milli>(*end->recorded - *start->recorded).count();
    return cudaSuccess;
}

// A record still queued runs first: it writes the event.
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    if (device().events.contains(event)) ladon::emu::detail::wait_for(event);
    if (!device().events.destroy(event))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: unknown event");
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
    if (ladon::emu::detail::is_default_stream(stream) || !device().streams.contains(stream))
        return record_error(cudaErrorStreamCaptureUnsupported,
                            "cudaStreamBeginCapture: only a created stream can capture (not the default stream)");
    if (stream->capturing)
        return record_error(cudaErrorIllegalState, "cudaStreamBeginCapture: the stream is already capturing");
    stream->capturing = true;
    stream->invalidated = false;
    stream->recorded.clear();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
    if (graph == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamEndCapture: null pointer");
    if (!ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorIllegalState, "cudaStreamEndCapture: the stream is not capturing");
    stream->capturing = false;
    std::vector<RecordedWork> work;
    work.swap(stream->recorded);
    if (stream->invalidated) {
        *graph = nullptr;
        return record_error(cudaErrorStreamCaptureInvalidated,
                            "cudaStreamEndCapture: a synchronising call during capture invalidated it");
    }
    *graph = device().graphs.create();
    (*graph)->work = std::move(work);
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
    if (status == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamIsCapturing: null pointer");
    if (!ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamIsCapturing: unknown stream");
    *status = ladon::emu::detail::is_capturing(stream)
                  ? (stream->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                  : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
    if (exec == nullptr || !device().graphs.contains(graph))
        return record_error(cudaErrorInvalidValue, "cudaGraphInstantiate: null pointer or unknown graph");
    *exec = device().graph_execs.create();
    (*exec)->work = graph->work;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    if (!device().graph_execs.contains(exec) || !ladon::emu::detail::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphLaunch: unknown graph or stream");
    if (ladon::emu::detail::is_capturing(stream))
        return record_error(cudaErrorNotSupported, "cudaGraphLaunch: the emulator does not capture graph launches");
    return ladon::emu::detail::submit(stream, [work = exec->work] {
        for (const auto& item : work)
            if (const cudaError_t error = item(); error != cudaSuccess) return error;
        return cudaSuccess;
    });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    if (!device().graph_execs.destroy(exec))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphExecDestroy: unknown graph");
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    if (!device().graphs.destroy(graph))
        return record_error(cudaErrorInvalidResourceHandle, "cudaGraphDestroy: unknown graph");
    return cudaSuccess;
}
