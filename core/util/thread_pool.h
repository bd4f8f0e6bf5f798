// One intra-op thread pool for the process, sized to the machine, settable at run time.
#pragma once
#include <cstdint>
#include <functional>

namespace heron {

int get_num_threads();
// n >= 1. Rebuilds the pool; also calls every registered thread-count listener (e.g. BLAS).
void set_num_threads(int n);
void add_num_threads_listener(void (*fn)(int));

// Wakes pool threads that went to sleep after idling (they spin ~100 us, then block), so that the
// first parallel_for of a burst of work (a session run) finds them up; cheap when none sleeps.
void wake_thread_pool();

// Splits [begin, end) into chunks of at least `grain` and runs fn(chunk_begin, chunk_end) on the
// pool. Runs inline when the range is small, when called from inside a pool task, or when the pool
// is busy with another caller's job. Rethrows the first exception a chunk raised.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace heron
