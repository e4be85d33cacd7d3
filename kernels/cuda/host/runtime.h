// runtime.h — runs an emulated kernel launch: blocks in turn, each block's threads as fibers (or
// OS threads with -DNST_HOST_THREADS), meeting at __syncthreads and warp-collective operations.
// Included once per shared library, after the .cu, by the glue build.py writes:
//   NST_EXPORT(kernel) -> extern "C" int nst_launch_<kernel>(cfg, args, err, errlen)
//                         extern "C" const char* nst_sig_<kernel>()   ("f32*,i32,f32", from the C++ types)
// Errors (a divergent barrier, a deadlock, a shuffle mask naming absent lanes, a misaligned WMMA
// pointer, too much shared memory, __trap) stop the launch: nst_launch_* returns 1 and the message.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>
#include <sys/mman.h>
#ifdef NST_HOST_THREADS
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#elif !defined(__x86_64__)
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace nst {
NST_TLS uint3 cur_thread, cur_block;
dim3 cur_block_dim, cur_grid_dim;

struct LaunchCfg {
    unsigned grid[3], block[3];
    unsigned long long shmem;       // dynamic shared memory, bytes
    int order;                      // 0 natural, 1 reversed, 2 shuffled (blocks and threads)
    unsigned long long seed;
};
struct Abort {};                    // thrown by fail(): unwinds the failing thread's kernel frames

constexpr unsigned long long STATIC_SHARED_LIMIT = 48 * 1024;
enum State { RUNNING, WAIT_BAR, WAIT_WARP, EXITED };

struct Warp {
    unsigned arrived = 0, mask = 0, gen = 0;
    const char* file = nullptr; const char* what = nullptr; int line = 0;
    alignas(16) unsigned char slot[2][32][64];          // double-buffered by gen parity
    char token[2];                                      // happens-before tokens (ThreadSanitizer)
};

struct Block {
    unsigned n = 0, waiting = 0, exited = 0;
    unsigned bar_count = 0, bar_gen = 0;
    const char* bar_file = nullptr; int bar_line = 0;
    char bar_token[2];
    std::vector<State> state;
    std::vector<Warp> warps;
#ifdef NST_HOST_THREADS
    std::mutex mu;
    std::condition_variable cv;
#endif
};

static Block g_blk;
static NST_TLS unsigned g_me;                          // linear index of the running thread
static std::function<void()>* g_body;
static char g_err[2048];
static std::atomic<bool> g_failed{false};
static std::vector<unsigned char> g_dyn_shared;

void* dynamic_shared() { return g_dyn_shared.data(); }

#ifdef NST_HOST_THREADS
struct Lock {
    std::unique_lock<std::mutex> lk{g_blk.mu};
};
#else
struct Lock {};
#endif

// ThreadSanitizer sees only the CUDA model's happens-before edges: the runtime's own memory and
// mutex are hidden (Quiet), and a barrier or warp exchange is a release by every arriving thread
// and an acquire by every released one, on a token per generation parity. Two warps that only
// meet in the runtime's mutex stay unordered, so a missing __syncthreads is a reported race.
#if defined(NST_HOST_THREADS) && defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
extern "C" void AnnotateIgnoreReadsBegin(const char* f, int l);
extern "C" void AnnotateIgnoreReadsEnd(const char* f, int l);
extern "C" void AnnotateIgnoreWritesBegin(const char* f, int l);
extern "C" void AnnotateIgnoreWritesEnd(const char* f, int l);
extern "C" void AnnotateIgnoreSyncBegin(const char* f, int l);
extern "C" void AnnotateIgnoreSyncEnd(const char* f, int l);
struct Quiet {
    Quiet() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); AnnotateIgnoreWritesBegin(__FILE__, __LINE__); AnnotateIgnoreSyncBegin(__FILE__, __LINE__); }
    ~Quiet() { AnnotateIgnoreSyncEnd(__FILE__, __LINE__); AnnotateIgnoreWritesEnd(__FILE__, __LINE__); AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
};
inline void hb_release(void* token) { __tsan_release(token); }
inline void hb_acquire(void* token) { __tsan_acquire(token); }
#else
struct Quiet {};
inline void hb_release(void*) {}
inline void hb_acquire(void*) {}
#endif
static NST_TLS unsigned t_barriers, t_warp_ops;        // this thread's count of each (token parity)

void fail(const char* fmt, ...)
{
    bool expected = false;
    if (g_failed.compare_exchange_strong(expected, true)) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(g_err, sizeof g_err, fmt, ap);
        va_end(ap);
        if (k >= 0 && size_t(k) < sizeof g_err)
            snprintf(g_err + k, sizeof g_err - k, " [block (%u,%u,%u) thread (%u,%u,%u)]", cur_block.x,
                     cur_block.y, cur_block.z, cur_thread.x, cur_thread.y, cur_thread.z);
    }
#ifdef NST_HOST_THREADS
    g_blk.cv.notify_all();
#endif
    throw Abort{};
}

// ---- waiting: a fiber yields to the scheduler, an OS thread waits on the condition variable ----
void yield_to_scheduler();

template <class Pred> void wait_until(Lock& lock, Pred done)
{
#ifdef NST_HOST_THREADS
    using namespace std::chrono_literals;
    if (!g_blk.cv.wait_for(lock.lk, 60s, [&] { return done() || g_failed.load(); }))
        fail("no progress for 60 s (a thread spinning on another?)");
    if (g_failed.load()) throw Abort{};
#else
    (void)lock;
    while (!done()) yield_to_scheduler();
#endif
}

inline void notify()
{
#ifdef NST_HOST_THREADS
    g_blk.cv.notify_all();
#endif
}

void check_deadlock()
{
    // every thread blocked or exited: nobody can arrive to release the blocked ones
    Block& b = g_blk;
    if (b.waiting == 0 || b.waiting + b.exited != b.n) return;
    unsigned at_bar = 0, at_warp = 0;
    const Warp* w = nullptr;
    for (unsigned i = 0; i < b.n; ++i) {
        at_bar += b.state[i] == WAIT_BAR;
        if (b.state[i] == WAIT_WARP) { ++at_warp; w = &b.warps[i / 32]; }
    }
    fail("deadlock: %u of %u threads wait at __syncthreads (%s:%d), %u at a warp-collective %s (%s:%d), "
         "%u have exited", at_bar, b.n, b.bar_file ? b.bar_file : "-", b.bar_line, at_warp,
         w ? w->what : "-", w ? w->file : "-", w ? w->line : 0, b.exited);
}

void arrive_barrier(const char* file, int line)
{
    Block& b = g_blk;
    Quiet quiet;
    Lock lock;
    if (b.bar_count == 0) { b.bar_file = file; b.bar_line = line; }
    else if (b.bar_line != line || (b.bar_file != file && std::strcmp(b.bar_file, file) != 0))
        fail("divergent __syncthreads: this thread at %s:%d, %u others at %s:%d", file, line,
             b.bar_count, b.bar_file, b.bar_line);
    if (++b.bar_count == b.n) {                         // the last to arrive releases the others
        b.bar_count = 0;
        ++b.bar_gen;
        for (unsigned i = 0; i < b.n; ++i)
            if (b.state[i] == WAIT_BAR) { b.state[i] = RUNNING; --b.waiting; }
        notify();
        return;
    }
    const unsigned gen = b.bar_gen;
    b.state[g_me] = WAIT_BAR;
    ++b.waiting;
    check_deadlock();
    wait_until(lock, [&] { return b.bar_gen != gen; });
}

void syncthreads(const char* file, int line)
{
    void* token = &g_blk.bar_token[t_barriers++ & 1];
    hb_release(token);
    arrive_barrier(file, line);
    hb_acquire(token);
}

const unsigned char* arrive_warp(unsigned mask, const void* mine, size_t bytes, const char* what,
                                 const char* file, int line)
{
    Block& b = g_blk;
    const unsigned lane = g_me & 31, wi = g_me >> 5, present = std::min(32u, b.n - 32 * wi);
    if (!((mask >> lane) & 1u)) fail("%s at %s:%d: mask 0x%08x leaves out the calling lane %u", what, file, line, mask, lane);
    if (present < 32 && (mask >> present) != 0)
        fail("%s at %s:%d: mask 0x%08x names lanes %u..31, absent from this %u-thread warp", what, file,
             line, mask, present, present);
    Quiet quiet;
    Lock lock;
    Warp& w = b.warps[wi];
    if (w.arrived == 0) { w.mask = mask; w.file = file; w.line = line; w.what = what; }
    else if (w.mask != mask || w.line != line || (w.file != file && std::strcmp(w.file, file) != 0))
        fail("divergent warp: %s at %s:%d (mask 0x%08x) while other lanes wait at %s at %s:%d (mask 0x%08x)",
             what, file, line, mask, w.what, w.file, w.line, w.mask);
    const unsigned gen = w.gen;
    std::memcpy(w.slot[gen & 1][lane], mine, bytes);
    w.arrived |= 1u << lane;
    if (w.arrived == mask) {
        w.arrived = 0;
        ++w.gen;
        for (unsigned l = 0; l < present; ++l)
            if (b.state[32 * wi + l] == WAIT_WARP) { b.state[32 * wi + l] = RUNNING; --b.waiting; }
        notify();
    } else {
        b.state[g_me] = WAIT_WARP;
        ++b.waiting;
        check_deadlock();
        wait_until(lock, [&] { return w.gen != gen; });
    }
    return &w.slot[gen & 1][0][0];                       // lane l's value at + 64·l, valid until the next-but-one exchange
}

const unsigned char* warp_exchange(unsigned mask, const void* mine, size_t bytes, const char* what,
                                   const char* file, int line)
{
    void* token = &g_blk.warps[g_me >> 5].token[t_warp_ops++ & 1];
    hb_release(token);
    const unsigned char* all = arrive_warp(mask, mine, bytes, what, file, line);
    hb_acquire(token);
    return all;
}

// ---- static shared memory: each __shared__ declaration, when executed, reports itself --------
struct SharedVar { void* p; size_t bytes; unsigned long long launch; };
static std::vector<SharedVar> g_shared_vars;
static unsigned long long g_launch_id, g_static_shared;

void use_shared(void* p, size_t bytes, const char* file, int line)
{
    // first time in this launch: count its bytes against the 48 KiB limit and poison it (NaN)
    Quiet quiet;
    Lock lock;
    SharedVar* v = nullptr;
    for (auto& s : g_shared_vars) if (s.p == p) v = &s;
    if (v && v->launch == g_launch_id) return;
    if (!v) { g_shared_vars.push_back({p, bytes, 0}); v = &g_shared_vars.back(); }
    v->launch = g_launch_id;
    g_static_shared += bytes;
    if (g_static_shared > STATIC_SHARED_LIMIT)
        fail("static __shared__ memory of this kernel reaches %llu bytes at %s:%d, over the 48 KiB a kernel "
             "may declare", g_static_shared, file, line);
    std::memset(p, 0xff, bytes);
}

inline void thread_exit()
{
    Quiet quiet;
    Lock lock;
    g_blk.state[g_me] = EXITED;
    ++g_blk.exited;
    check_deadlock();
}

inline uint3 coords(unsigned i, const dim3& d) { return {i % d.x, (i / d.x) % d.y, i / (d.x * d.y)}; }

inline std::vector<unsigned> ordering(unsigned n, int order, std::mt19937_64& rng)
{
    std::vector<unsigned> idx(n);
    for (unsigned i = 0; i < n; ++i) idx[i] = i;
    if (order == 1) std::reverse(idx.begin(), idx.end());
    if (order == 2) std::shuffle(idx.begin(), idx.end(), rng);
    return idx;
}

// ---- one block -----------------------------------------------------------------------------
#ifdef NST_HOST_THREADS
// One OS thread per CUDA thread, kept between blocks (starting threads dominated the time): the
// caller opens a round, threads 0..n−1 run the block's body, the last to finish closes it.
struct Pool {
    std::mutex mu;
    std::condition_variable start, finished;
    unsigned long long round = 0;
    unsigned n = 0, running = 0;
    uint3 block{};
    std::vector<std::thread> threads;
};
static Pool& g_pool = *new Pool;                        // never destroyed: parked threads wait on it at exit

void pool_worker(unsigned i)
{
    unsigned long long seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(g_pool.mu);
            g_pool.start.wait(lk, [&] { return g_pool.round != seen && i < g_pool.n; });
            seen = g_pool.round;
            g_me = i;
            cur_block = g_pool.block;
            cur_thread = coords(i, cur_block_dim);
            t_barriers = t_warp_ops = 0;
        }
        try { (*g_body)(); thread_exit(); } catch (Abort&) {}
        std::lock_guard<std::mutex> lk(g_pool.mu);
        if (--g_pool.running == 0) g_pool.finished.notify_all();
    }
}

void run_block(const std::vector<unsigned>&)
{
    std::unique_lock<std::mutex> lk(g_pool.mu);
    while (g_pool.threads.size() < g_blk.n) {
        g_pool.threads.emplace_back(pool_worker, unsigned(g_pool.threads.size()));
        g_pool.threads.back().detach();                  // parked between launches until exit
    }
    g_pool.n = g_pool.running = g_blk.n;
    g_pool.block = cur_block;
    ++g_pool.round;
    g_pool.start.notify_all();
    g_pool.finished.wait(lk, [] { return g_pool.running == 0; });
}
void yield_to_scheduler() {}
#else
#if defined(__SANITIZE_ADDRESS__)
#define NST_STACK_BYTES (1u << 20)
#else
#define NST_STACK_BYTES (256u << 10)
#endif

struct Fiber {
    char* stack = nullptr;                               // mmap'd, a guard page at the bottom
#ifdef __x86_64__
    void* sp = nullptr;
#else
    ucontext_t ctx;
#endif
    void* fake_stack = nullptr;                          // AddressSanitizer's bookkeeping
};

static std::vector<Fiber> g_fibers;
#ifdef __x86_64__
static void* g_sched_sp;
extern "C" void nst_fiber_switch(void** save_sp, void* to_sp);
asm(".text\n.p2align 4\n.globl nst_fiber_switch\n.hidden nst_fiber_switch\n"
    ".type nst_fiber_switch,@function\nnst_fiber_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size nst_fiber_switch,.-nst_fiber_switch\n");
#else
static ucontext_t g_sched_ctx;
#endif
static void* g_sched_fake;
static const void* g_sched_bottom;
static size_t g_sched_size;

inline void asan_start(void** save, const void* bottom, size_t size)
{
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(save, bottom, size);
#else
    (void)save; (void)bottom; (void)size;
#endif
}
inline void asan_finish(void* save, const void** bottom, size_t* size)
{
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(save, bottom, size);
#else
    (void)save; (void)bottom; (void)size;
#endif
}

void to_scheduler(bool final)
{
    Fiber& f = g_fibers[g_me];
    asan_start(final ? nullptr : &f.fake_stack, g_sched_bottom, g_sched_size);
#ifdef __x86_64__
    nst_fiber_switch(&f.sp, g_sched_sp);
#else
    swapcontext(&f.ctx, &g_sched_ctx);
#endif
    asan_finish(f.fake_stack, nullptr, nullptr);
}

void yield_to_scheduler() { to_scheduler(false); }

extern "C" void nst_fiber_entry()
{
    asan_finish(nullptr, &g_sched_bottom, &g_sched_size);
    try { (*g_body)(); thread_exit(); } catch (Abort&) {
    } catch (...) {
        try { fail("a C++ exception escaped the kernel"); } catch (Abort&) {}
    }
    to_scheduler(true);
    std::abort();                                        // never resumed
}

void prepare_fiber(unsigned i)
{
    if (g_fibers.size() <= i) g_fibers.resize(i + 1);
    Fiber& f = g_fibers[i];
    if (!f.stack) {
        void* p = mmap(nullptr, NST_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) fail("cannot map a fiber stack");
        mprotect(p, 4096, PROT_NONE);
        f.stack = static_cast<char*>(p);
    }
#ifdef __x86_64__
    void** top = reinterpret_cast<void**>(f.stack + NST_STACK_BYTES);   // 16-byte aligned
    void** sp = top - 8;                                 // 6 saved registers, entry, a fake return slot
    for (int r = 0; r < 6; ++r) sp[r] = nullptr;
    sp[6] = reinterpret_cast<void*>(&nst_fiber_entry);
    sp[7] = nullptr;
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack + 4096;
    f.ctx.uc_stack.ss_size = NST_STACK_BYTES - 4096;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, nst_fiber_entry, 0);
#endif
    f.fake_stack = nullptr;
}

void resume(unsigned i)
{
    g_me = i;
    cur_thread = coords(i, cur_block_dim);
    Fiber& f = g_fibers[i];
    asan_start(&g_sched_fake, f.stack + 4096, NST_STACK_BYTES - 4096);
#ifdef __x86_64__
    nst_fiber_switch(&g_sched_sp, f.sp);
#else
    swapcontext(&g_sched_ctx, &f.ctx);
#endif
    asan_finish(g_sched_fake, nullptr, nullptr);
}

void run_block(const std::vector<unsigned>& order)
{
    for (unsigned i = 0; i < g_blk.n; ++i) prepare_fiber(i);
    for (bool ran = true; ran && !g_failed.load();) {    // passes until no fiber can run
        ran = false;
        for (unsigned i : order) {
            if (g_blk.state[i] != RUNNING) continue;
            ran = true;
            resume(i);
            if (g_failed.load()) return;
        }
    }
}
#endif

void reset_block(unsigned n)
{
    Block& b = g_blk;
    b.n = n;
    b.waiting = b.exited = b.bar_count = 0;
    b.state.assign(n, RUNNING);
    b.warps.resize((n + 31) / 32);                       // slots need no clearing: written before read
    for (auto& w : b.warps) { w.arrived = w.mask = w.gen = 0; w.file = w.what = nullptr; w.line = 0; }
    for (auto& s : g_shared_vars)                        // NaN (0xffffffff) in every float
        if (s.launch == g_launch_id) std::memset(s.p, 0xff, s.bytes);
    std::fill(g_dyn_shared.begin(), g_dyn_shared.end(), 0xff);
}

void check_config(const LaunchCfg& c)
{
    const unsigned long long threads = 1ull * c.block[0] * c.block[1] * c.block[2];
    if (threads == 0 || threads > 1024 || c.block[2] > 64)
        fail("block (%u,%u,%u): 1 to 1024 threads, z at most 64", c.block[0], c.block[1], c.block[2]);
    if (c.grid[0] == 0 || c.grid[1] == 0 || c.grid[2] == 0 || c.grid[1] > 65535 || c.grid[2] > 65535 ||
        c.grid[0] > 0x7fffffffu)
        fail("grid (%u,%u,%u): x in 1..2^31-1, y and z in 1..65535", c.grid[0], c.grid[1], c.grid[2]);
    if (c.shmem > STATIC_SHARED_LIMIT)
        fail("dynamic shared memory %llu bytes, over 48 KiB: needs cudaFuncSetAttribute, unemulated", c.shmem);
}

void run_grid(const LaunchCfg& c)
{
    check_config(c);
    cur_grid_dim = dim3(c.grid[0], c.grid[1], c.grid[2]);
    cur_block_dim = dim3(c.block[0], c.block[1], c.block[2]);
    g_dyn_shared.assign(c.shmem, 0xff);
    std::mt19937_64 rng(c.seed);
    const unsigned long long blocks = 1ull * c.grid[0] * c.grid[1] * c.grid[2];
    const unsigned n = c.block[0] * c.block[1] * c.block[2];
    std::vector<unsigned long long> perm;
    if (c.order == 2) {
        perm.resize(blocks);
        for (unsigned long long k = 0; k < blocks; ++k) perm[k] = k;
        std::shuffle(perm.begin(), perm.end(), rng);
    }
    for (unsigned long long k = 0; k < blocks && !g_failed.load(); ++k) {
        const unsigned long long b = c.order == 2 ? perm[k] : c.order == 1 ? blocks - 1 - k : k;
        cur_block = {unsigned(b % c.grid[0]), unsigned((b / c.grid[0]) % c.grid[1]), unsigned(b / (1ull * c.grid[0] * c.grid[1]))};
        reset_block(n);
        run_block(ordering(n, c.order, rng));
    }
}

// ---- the exported entry points ------------------------------------------------------------
template <class T> struct Code;                          // undefined: an unemulated parameter type
template <> struct Code<float*> { static constexpr const char* s = "f32*"; };
template <> struct Code<const float*> { static constexpr const char* s = "f32*"; };
template <> struct Code<unsigned*> { static constexpr const char* s = "u32*"; };
template <> struct Code<const unsigned*> { static constexpr const char* s = "u32*"; };
template <> struct Code<int*> { static constexpr const char* s = "i32*"; };
template <> struct Code<const int*> { static constexpr const char* s = "i32*"; };
template <> struct Code<int> { static constexpr const char* s = "i32"; };
template <> struct Code<unsigned> { static constexpr const char* s = "u32"; };
template <> struct Code<float> { static constexpr const char* s = "f32"; };

template <class... A> const char* signature(void (*)(A...))
{
    static const std::string s = [] {
        std::string out;
        for (const char* c : {Code<A>::s...}) out += (out.empty() ? "" : ",") + std::string(c);
        return out;
    }();
    return s.c_str();
}

template <class... A, size_t... I>
void call(void (*k)(A...), void** args, std::index_sequence<I...>)
{
    k(*static_cast<std::remove_reference_t<A>*>(args[I])...);
}

template <class... A>
int launch(void (*k)(A...), const LaunchCfg* cfg, void** args, char* err, size_t errlen)
{
    g_failed = false;
    g_err[0] = 0;
    ++g_launch_id;
    g_static_shared = cfg->shmem;
    std::function<void()> body = [&] { call(k, args, std::index_sequence_for<A...>{}); };
    g_body = &body;
    try { run_grid(*cfg); } catch (Abort&) {}
    g_body = nullptr;
    if (!g_failed.load()) return 0;
    snprintf(err, errlen, "%s", g_err);
    return 1;
}
}  // namespace nst

#define NST_EXPORT(name)                                                                            \
    extern "C" __attribute__((visibility("default"))) int nst_launch_##name(                       \
        const nst::LaunchCfg* cfg, void** args, char* err, size_t errlen)                          \
    { return nst::launch(name, cfg, args, err, errlen); }                                          \
    extern "C" __attribute__((visibility("default"))) const char* nst_sig_##name() { return nst::signature(name); }
