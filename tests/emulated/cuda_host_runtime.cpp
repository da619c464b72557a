// The scheduler behind cuda_host.h, built once into a shared library that every emulated
// kernel module links against (tests/emulated/kernel_build.py). See cuda_host.h for what
// it does; its entry points are the extern "C" functions at the end.
#include <algorithm>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <semaphore>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef GPUAD_EMU_FREE_THREADS
#include <sys/mman.h>
#include <unistd.h>
#ifndef __x86_64__
#include <ucontext.h>
#endif
#endif

#include "cuda_host_abi.h"

namespace gpuad_emu {

#ifndef GPUAD_EMU_FREE_THREADS
// --- fiber contexts: the scheduler switches between the CUDA threads of a block ---------------
#ifdef __x86_64__
// switch_to(&from, to): saves the callee-saved registers and the SSE/x87 control words on
// this stack, stores its stack pointer in *from, and resumes the stack `to` (about 20 ns,
// against about 1 us for swapcontext, which makes a system call each time).
extern "C" void gpuad_emu_switch(void** from, void* to);
asm(R"(
    .text
    .hidden gpuad_emu_switch
    .globl gpuad_emu_switch
    .type gpuad_emu_switch, @function
gpuad_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size gpuad_emu_switch, .-gpuad_emu_switch
)");

struct Context {
  void* sp = nullptr;
};
// A context that starts `entry` (which must never return) on the stack [base, base + size).
inline void make_context(Context& c, char* base, size_t size, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>(
      (reinterpret_cast<uintptr_t>(base + size) & ~uintptr_t(15)) - 8);  // entry sees rsp = 8 mod 16
  *--top = reinterpret_cast<uint64_t>(entry);                            // where `ret` goes
  for (int i = 0; i < 6; ++i) *--top = 0;                                // rbp rbx r12-r15
  *--top = 0x037F00001F80ull;  // MXCSR and the x87 control word at their defaults
  c.sp = top;
}
inline void switch_context(Context& from, Context& to) { gpuad_emu_switch(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
inline void make_context(Context& c, char* base, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = base;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif
#endif

enum Kind { kIdx, kUp, kDown, kXor, kSyncWarp };
enum class State { idle, ready, running, barrier, warp, done };

struct Failure {};  // unwinds a thread out of the kernel when its block is stopped

#ifdef GPUAD_EMU_FREE_THREADS
using Mutex = std::mutex;
#else
struct Mutex {  // fibers take turns on one OS thread: nothing to exclude
  void lock() {}
  void unlock() {}
};
constexpr size_t kStack = 256 << 10;
#endif
using Lock = std::unique_lock<Mutex>;

struct Lane {
  State state = State::idle;
  uint64_t value = 0, result = 0;  // a shuffle's payload and what it read
  int src = 0;                     // the lane a shuffle reads
#ifdef GPUAD_EMU_FREE_THREADS
  std::binary_semaphore wake{0};
#else
  Context context;
  char* stack = nullptr;  // kStack bytes above a guard page
#endif
};

struct WarpOp {  // the warp operation that some lanes of one warp wait at
  unsigned arrived = 0, mask = 0, exited = 0;
  int line = 0, kind = 0;
  const char* name = "";
};

static GPUAD_EMU_PER_THREAD int tls_lane = -1;  // the running CUDA thread's index in its block

inline std::string hex(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
inline std::string at_line(const char* what, int line) {
  return std::string(what) + " (line " + std::to_string(line) + ")";
}

// The threads of the block that runs now (one block at a time, whatever the module).
class Runtime {
 public:
  // Runs the grid; returns an empty string, or what stopped it.
  std::string run(void (*body)(void*), void* ctx, dim3 grid, dim3 block, double timeout_s,
                  char* const* shared, const unsigned long long* sizes, int n_shared) {
    std::lock_guard<std::mutex> one_launch(launch_m_);  // ctypes lets Python threads in at once
    Lock lock(m_);
    if (!broken_.empty()) return broken_;
    n_ = int(block.x * block.y * block.z);
    while (int(lanes_.size()) < n_) add_lane();
    gpuad_emu_block_dim = block;
    gpuad_emu_grid_dim = grid;
    body_ = body;
    ctx_ = ctx;
    order_ ^= 1;  // each launch starts in the other order
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(timeout_s));
    watch(deadline);
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          block_ = uint3{x, y, z};
          for (int i = 0; i < n_shared; ++i) std::memset(shared[i], 0xFF, size_t(sizes[i]));
          if (!run_block(lock, deadline)) return broken_;
          if (!error_.empty()) {
            watch({});
            return "block (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                   std::to_string(z) + "): " + error_;
          }
        }
    watch({});
    return "";
  }

  // --- what kernel threads call ---------------------------------------------------------------
  void sync_threads(int line) {
    Lock lock(m_);
    const int me = tls_lane;
    check_abort();
    if (at_barrier_ > 0 && barrier_line_ != line)
      fail("threads wait at different __syncthreads() calls: " + std::to_string(at_barrier_) +
           " at line " + std::to_string(barrier_line_) + ", " + who(me) + " at line " +
           std::to_string(line));
    if (exited_ > 0)
      fail(who(me) + " waits at " + at_line("__syncthreads()", line) + " but " +
           std::to_string(exited_) + " thread(s) of the block have returned (" + first_done() +
           " among them): an early return before a barrier");
    barrier_line_ = line;
    lanes_[me]->state = State::barrier;
    if (++at_barrier_ == n_) {
      at_barrier_ = 0;
      release(0, n_, State::barrier, me);
    }
    suspend(lock, me);
  }

  uint64_t warp_op(int line, Kind kind, const char* name, unsigned mask, uint64_t value, int arg,
                   int width) {
    Lock lock(m_);
    const int me = tls_lane, warp = me / 32, lane = me % 32;
    check_abort();
    auto op_at = [&] { return at_line(name, line) + " with mask " + hex(mask); };
    if (width < 1 || width > 32 || (width & (width - 1)))
      fail(op_at() + ": width " + std::to_string(width) + " is not a power of 2 up to 32");
    const int lanes_here = std::min(32, n_ - warp * 32);
    const unsigned existing = lanes_here == 32 ? ~0u : (1u << lanes_here) - 1;
    if (!(mask >> lane & 1u))
      fail(who(me) + " calls " + op_at() + ", which leaves its own lane " +
           std::to_string(lane) + " out");
    if (mask & ~existing)
      fail(op_at() + " names lanes that do not exist: warp " + std::to_string(warp) + " has " +
           std::to_string(lanes_here) + " lanes (a block of " + std::to_string(n_) +
           " threads is not a whole number of warps)");
    WarpOp& op = ops_[warp];
    if (mask & op.exited)
      fail(op_at() + " waits for lane " + std::to_string(std::countr_zero(mask & op.exited)) +
           " of warp " + std::to_string(warp) + ", which has returned");
    if (op.arrived && (op.line != line || op.mask != mask || op.kind != kind))
      fail("lanes of warp " + std::to_string(warp) + " reach different warp operations: " +
           at_line(op.name, op.line) + " with mask " + hex(op.mask) + " and " + op_at());
    op.line = line, op.mask = mask, op.kind = kind, op.name = name;
    op.arrived |= 1u << lane;
    Lane& l = *lanes_[me];
    l.state = State::warp;
    l.value = value;
    l.src = source_lane(kind, lane, arg, width);
    if (op.arrived == mask) complete(warp, op, me);
    suspend(lock, me);
    return l.result;
  }

 private:
  // --- the checks at a thread's end -----------------------------------------------------------
  void finish(Lock&, int me, bool normal) {
    if (normal && !aborted_) {
      if (at_barrier_ > 0)
        fail_locked(who(me) + " returned while " + std::to_string(at_barrier_) +
                    " thread(s) wait at " + at_line("__syncthreads()", barrier_line_) +
                    ": an early return before a barrier");
      const WarpOp& op = ops_[me / 32];
      if (op.arrived && (op.mask >> (me % 32) & 1u))
        fail_locked(who(me) + " returned while lanes of its warp wait for it at " +
                    at_line(op.name, op.line) + " with mask " + hex(op.mask));
    }
    exited_ += normal;
    ops_[me / 32].exited |= 1u << (me % 32);
    lanes_[me]->state = State::done;
    ++finished_;
#ifdef GPUAD_EMU_FREE_THREADS
    --running_;
    if (finished_ == n_)
      done_.release();
    else if (running_ == 0 && !aborted_)
      fail_locked("deadlock: " + waiting_summary());
#endif
  }

  std::string who(int t) const {
    const dim3& b = gpuad_emu_block_dim;
    std::string s = "thread " + std::to_string(t);
    if (b.y > 1 || b.z > 1)
      s += " (threadIdx " + std::to_string(t % b.x) + ", " + std::to_string(t / b.x % b.y) +
           ", " + std::to_string(t / (b.x * b.y)) + ")";
    return s;
  }

  std::string first_done() const {
    for (int t = 0; t < n_; ++t)
      if (lanes_[t]->state == State::done) return who(t);
    return "none";
  }

  static int source_lane(Kind kind, int lane, int arg, int width) {
    const int base = lane & ~(width - 1), pos = lane - base;
    switch (kind) {
      case kIdx: return base + (arg & (width - 1));
      case kUp: return pos >= arg ? lane - arg : lane;
      case kDown: return pos + arg < width ? lane + arg : lane;
      case kXor: {
        const int src = lane ^ arg;
        return (src & ~(width - 1)) > base ? lane : src;  // a later group: own value
      }
      default: return lane;
    }
  }

  // Every lane the mask names has arrived: each reads its source lane's value.
  void complete(int warp, WarpOp& op, int me) {
    for (int j = 0; j < 32; ++j) {
      if (!(op.mask >> j & 1u)) continue;
      Lane& l = *lanes_[warp * 32 + j];
      if (!(op.mask >> l.src & 1u))
        fail(at_line(op.name, op.line) + " with mask " + hex(op.mask) + ": lane " +
             std::to_string(j) + " reads lane " + std::to_string(l.src) +
             ", which is outside the mask (undefined on a GPU)");
      l.result = lanes_[warp * 32 + l.src]->value;
    }
    op.arrived = op.mask = 0;
    release(warp * 32, std::min(n_, warp * 32 + 32), State::warp, me);
  }

  // Threads lo..hi-1 waiting in `state` may go on, in this release's order.
  void release(int lo, int hi, State state, int me) {
    order_ ^= 1;
    for (int k = 0; k < hi - lo; ++k) {
      const int t = order_ ? hi - 1 - k : lo + k;
      if (lanes_[t]->state == state) {
        if (t == me && free_threads) {
          lanes_[t]->state = State::running;
        } else {
          lanes_[t]->state = State::ready;
          wake(t);
        }
      }
    }
  }

  std::string waiting_summary() const {
    std::string s;
    int at_barrier = 0;
    for (int t = 0; t < n_; ++t) at_barrier += lanes_[t]->state == State::barrier;
    if (at_barrier)
      s = std::to_string(at_barrier) + " thread(s) wait at " +
          at_line("__syncthreads()", barrier_line_);
    for (int w = 0; w < int(ops_.size()); ++w)
      if (ops_[w].arrived)
        s += (s.empty() ? "lanes " : "; lanes ") + hex(ops_[w].arrived) + " of warp " +
             std::to_string(w) + " wait at " + at_line(ops_[w].name, ops_[w].line) +
             " for mask " + hex(ops_[w].mask);
    if (exited_) s += (s.empty() ? "" : "; ") + std::to_string(exited_) + " thread(s) returned";
    return s.empty() ? "no thread can go on" : s;
  }

  void check_abort() const {
    if (aborted_) throw Failure{};
  }

  [[noreturn]] void fail(const std::string& why) {
    fail_locked(why);
    throw Failure{};
  }

  // Stops the block, keeping the first error: every waiting thread unwinds when it resumes
  // (the calling thread, if a CUDA thread, unwinds by itself).
  void fail_locked(const std::string& why) {
    if (error_.empty()) error_ = why;
    if (aborted_) return;
    aborted_ = true;
    for (int t = 0; t < n_; ++t) {
      Lane& l = *lanes_[t];
      if (t == tls_lane) continue;
      if (l.state == State::barrier || l.state == State::warp || l.state == State::idle) {
        l.state = State::ready;
        wake(t);
      }
    }
  }

  void start_block() {
    error_.clear();
    aborted_ = false;
    exited_ = finished_ = at_barrier_ = 0;
    ops_.assign((n_ + 31) / 32, WarpOp{});
    for (int t = 0; t < n_; ++t) lanes_[t]->state = State::idle;
  }

#ifdef GPUAD_EMU_FREE_THREADS
  // --- OS threads, running concurrently (the ThreadSanitizer build) --------------------------
  static constexpr bool free_threads = true;

  void wake(int t) {
    lanes_[t]->state = State::running;
    ++running_;
    lanes_[t]->wake.release();
  }

  void suspend(Lock& lock, int me) {
    Lane& l = *lanes_[me];
    if (l.state != State::running) {
      if (--running_ == 0 && !aborted_) fail_locked("deadlock: " + waiting_summary());
      if (!aborted_) {  // (a deadlock found here: this thread unwinds at once)
        lock.unlock();
        l.wake.acquire();
        lock.lock();
      }
    }
    check_abort();
  }

  bool run_block(Lock& lock, std::chrono::steady_clock::time_point deadline) {
    start_block();
    running_ = 0;
    release(0, n_, State::idle, -1);
    lock.unlock();
    bool finished = done_.try_acquire_until(deadline);
    lock.lock();
    if (finished) return true;
    fail_locked("no progress before the time limit (a thread that never reaches its end: an "
                "endless loop?); " + waiting_summary());
    lock.unlock();
    finished = done_.try_acquire_for(std::chrono::seconds(2));
    lock.lock();
    if (!finished) broken_ = "a kernel thread is stuck (" + error_ + "); the module is unusable";
    return finished;
  }

  void watch(std::chrono::steady_clock::time_point) {}

  void add_lane() {
    const int t = int(lanes_.size());
    lanes_.push_back(std::make_unique<Lane>());
    Lane* lane = lanes_.back().get();  // not lanes_[t] from the thread: the vector grows
    std::thread([this, t, lane] { work(t, *lane); }).detach();
  }

  void work(int t, Lane& l) {
    tls_lane = t;
    for (;;) {
      l.wake.acquire();
      run_thread(t);
    }
  }

  std::counting_semaphore<1 << 20> done_{0};
  int running_ = 0;
#else
  // --- fibers: the threads of a block take turns on the launching thread ----------------------
  static constexpr bool free_threads = false;

  void wake(int t) { ready_.push_back(t); }

  void suspend(Lock& lock, int me) {
    lock.unlock();
    switch_context(lanes_[me]->context, scheduler_);
    lock.lock();
    check_abort();
  }

  bool run_block(Lock&, std::chrono::steady_clock::time_point) {
    start_block();
    ready_.clear();
    release(0, n_, State::idle, -1);
    for (;;) {
      if (ready_.empty()) {
        if (finished_ == n_) return true;
        fail_locked("deadlock: " + waiting_summary());
        continue;
      }
      const int t = ready_.front();
      ready_.pop_front();
      Lane& l = *lanes_[t];
      const bool start = !started_[t];
      l.state = State::running;
      tls_lane = t;
      const dim3& b = gpuad_emu_block_dim;
      gpuad_emu_thread_idx = uint3{t % b.x, t / b.x % b.y, t / (b.x * b.y)};
      gpuad_emu_block_idx = block_;
      if (start) {
        started_[t] = true;
        // stack tops staggered by thread: aligned alike, they would share cache sets
        make_context(l.context, l.stack, kStack - 64 * (t % 61), &Runtime::fiber_main);
      }
      switch_context(scheduler_, l.context);
      tls_lane = -1;  // the scheduler runs no CUDA thread
      if (finished_ > n_) {
        broken_ = "internal error: a CUDA thread finished twice";
        return false;
      }
    }
  }

  static void fiber_main();

  void add_lane() {
    auto lane = std::make_unique<Lane>();
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mprotect(p, page, PROT_NONE);  // a stack overflow faults instead of corrupting a neighbour
    lane->stack = static_cast<char*>(p) + page;
    lanes_.push_back(std::move(lane));
    started_.push_back(false);
  }

  // A fiber that never comes back cannot be stopped: past its deadline the process ends
  // with a message rather than hanging the test run.
  void watch(std::chrono::steady_clock::time_point deadline) {
    {
      std::lock_guard<std::mutex> g(watch_m_);
      deadline_ = deadline;
      if (!watcher_started_) {
        watcher_started_ = true;
        std::thread([this] { watcher(); }).detach();
      }
    }
    watch_cv_.notify_all();
  }

  void watcher() {
    std::unique_lock<std::mutex> g(watch_m_);
    for (;;) {
      if (deadline_ == std::chrono::steady_clock::time_point{}) {
        watch_cv_.wait(g);
      } else if (watch_cv_.wait_until(g, deadline_) == std::cv_status::timeout &&
                 deadline_ != std::chrono::steady_clock::time_point{} &&
                 std::chrono::steady_clock::now() >= deadline_) {
        std::fprintf(stderr, "gpuad emulated CUDA: a kernel launch ran past its time limit (a "
                             "thread in an endless loop?); stopping the process\n");
        std::fflush(stderr);
        std::_Exit(70);
      }
    }
  }

  std::deque<int> ready_;
  std::vector<bool> started_;
  Context scheduler_;
  std::mutex watch_m_;
  std::condition_variable watch_cv_;
  std::chrono::steady_clock::time_point deadline_{};
  bool watcher_started_ = false;
#endif

  // One CUDA thread's run through the kernel body.
  void run_thread(int t) {
    bool normal = true;
    try {
      {
        Lock lock(m_);
        const dim3& b = gpuad_emu_block_dim;
        gpuad_emu_thread_idx = uint3{t % b.x, t / b.x % b.y, t / (b.x * b.y)};
        gpuad_emu_block_idx = block_;
        check_abort();
      }
      body_(ctx_);
    } catch (const Failure&) {
      normal = false;
    }
    Lock lock(m_);
    finish(lock, t, normal);
  }

  Mutex m_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // never shrinks: lanes outlive launches
  std::vector<WarpOp> ops_;
  std::mutex launch_m_;
  void (*body_)(void*) = nullptr;
  void* ctx_ = nullptr;
  uint3 block_{0, 0, 0};
  std::string error_, broken_;
  bool aborted_ = false;
  int n_ = 0, exited_ = 0, finished_ = 0, at_barrier_ = 0, barrier_line_ = 0, order_ = 0;
};

// Never destroyed: detached threads may still use it while the process exits.
inline Runtime& runtime() {
  static Runtime* rt = new Runtime;
  return *rt;
}

#ifndef GPUAD_EMU_FREE_THREADS
inline void Runtime::fiber_main() {
  Runtime& rt = runtime();
  const int t = tls_lane;
  rt.run_thread(t);
  rt.started_[t] = false;
  Context finished;  // never resumed: the next block makes this lane's context anew
  switch_context(finished, rt.scheduler_);
}
#endif

}  // namespace gpuad_emu

using gpuad_emu::runtime;

GPUAD_EMU_PER_THREAD uint3 gpuad_emu_thread_idx, gpuad_emu_block_idx;
dim3 gpuad_emu_block_dim, gpuad_emu_grid_dim;

void gpuad_emu_sync_threads(int line) { runtime().sync_threads(line); }

unsigned long long gpuad_emu_warp_op(int line, int kind, const char* name, unsigned mask,
                                     unsigned long long value, int arg, int width) {
  return runtime().warp_op(line, gpuad_emu::Kind(kind), name, mask, value, arg, width);
}

int gpuad_emu_run(void (*body)(void*), void* ctx, const unsigned* dims, double timeout_s,
                  char* const* shared, const unsigned long long* sizes, int n_shared, char* err,
                  int errlen) {
  const std::string why =
      runtime().run(body, ctx, dim3(dims[0], dims[1], dims[2]), dim3(dims[3], dims[4], dims[5]),
                    timeout_s, shared, sizes, n_shared);
  std::snprintf(err, size_t(errlen), "%s", why.c_str());
  return why.empty() ? 0 : 1;
}
