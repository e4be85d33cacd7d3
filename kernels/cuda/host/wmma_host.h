// wmma_host.h — nvcuda::wmma for the one shape our kernels use: m16n16k8, TF32 operands, FP32
// accumulate. Like the hardware, each lane holds a share of every fragment (element e of the
// tile lives in lane e % 32, slot e / 32: 4 floats of A 16×8, 4 of B 8×16, 8 of C 16×16), so a
// lane that skips a load leaves its share stale; mma_sync is warp-collective (all 32 lanes meet
// and exchange shares), and its products use only the TF32 part of each operand (low 13 mantissa
// bits ignored), as tensor cores do. Pointers must be 256-bit aligned and ldm a multiple of 4.
// Any other fragment shape or type is a compile error.
#pragma once
#include <cstdint>
#include <cstring>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision { struct tf32 {}; }
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment;  // undefined: unemulated

template <int Rows, int Cols> struct frag_base {
    static constexpr int rows = Rows, cols = Cols, num_elements = Rows * Cols / 32;
    float x[num_elements];
};
template <> struct fragment<matrix_a, 16, 16, 8, precision::tf32, row_major> : frag_base<16, 8> { using layout = row_major; };
template <> struct fragment<matrix_a, 16, 16, 8, precision::tf32, col_major> : frag_base<16, 8> { using layout = col_major; };
template <> struct fragment<matrix_b, 16, 16, 8, precision::tf32, row_major> : frag_base<8, 16> { using layout = row_major; };
template <> struct fragment<matrix_b, 16, 16, 8, precision::tf32, col_major> : frag_base<8, 16> { using layout = col_major; };
template <> struct fragment<accumulator, 16, 16, 8, float, void> : frag_base<16, 16> {};

inline float __float_to_tf32(float f)
{
    // round to nearest, ties away from zero, keeping 10 mantissa bits (cvt.rna.tf32.f32)
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&f, &u, 4);
    return f;
}

namespace detail {
inline float tf32_operand(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u &= 0xffffe000u;
    std::memcpy(&f, &u, 4);
    return f;
}
inline void check_ptr(const void* p, unsigned ldm, const char* what)
{
    if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
        nst::fail("%s: pointer %p is not 256-bit aligned (lane %d)", what, p, nst::lane());
    if (ldm % 4 != 0) nst::fail("%s: ldm %u is not a multiple of 4 floats", what, ldm);
}
template <class F> inline int offset(int e, unsigned ldm, bool row)
{
    const int r = e / F::cols, c = e % F::cols;
    return row ? r * int(ldm) + c : c * int(ldm) + r;
}
}  // namespace detail

template <class F> inline void fill_fragment(F& f, float v)
{
    for (int t = 0; t < F::num_elements; ++t) f.x[t] = v;
}

template <class F> inline void load_matrix_sync(F& f, const float* p, unsigned ldm)
{
    detail::check_ptr(p, ldm, "wmma::load_matrix_sync");
    const bool row = std::is_same<typename F::layout, row_major>::value;
    for (int t = 0; t < F::num_elements; ++t) f.x[t] = p[detail::offset<F>(nst::lane() + 32 * t, ldm, row)];
}

using acc_t = fragment<accumulator, 16, 16, 8, float, void>;

inline void store_matrix_sync(float* p, const acc_t& f, unsigned ldm, layout_t layout)
{
    detail::check_ptr(p, ldm, "wmma::store_matrix_sync");
    for (int t = 0; t < acc_t::num_elements; ++t)
        p[detail::offset<acc_t>(nst::lane() + 32 * t, ldm, layout == mem_row_major)] = f.x[t];
}

template <class FA, class FB>
inline void mma_sync(acc_t& d, const FA& a, const FB& b, const acc_t& c)
{
    // D = A·B + C over the warp: lanes exchange their shares, each computes its own 8 of D
    static_assert(FA::rows == 16 && FA::cols == 8 && FB::rows == 8 && FB::cols == 16, "unemulated mma shape");
    struct Share { float a[4], b[4], c[8]; } mine;
    static_assert(sizeof(Share) == 64, "one exchange slot per lane");
    std::memcpy(mine.a, a.x, sizeof mine.a);
    std::memcpy(mine.b, b.x, sizeof mine.b);
    std::memcpy(mine.c, c.x, sizeof mine.c);
    const Share* all = reinterpret_cast<const Share*>(
        nst::warp_exchange(0xffffffffu, &mine, sizeof(Share), "wmma::mma_sync", __FILE__, __LINE__));
    auto A = [&](int r, int k) { const int e = r * 8 + k; return detail::tf32_operand(all[e % 32].a[e / 32]); };
    auto B = [&](int k, int n) { const int e = k * 16 + n; return detail::tf32_operand(all[e % 32].b[e / 32]); };
    const int lane = nst::lane();
    for (int t = 0; t < acc_t::num_elements; ++t) {
        const int e = lane + 32 * t, r = e / 16, n = e % 16;
        float s = all[e % 32].c[e / 32];
        for (int k = 0; k < 8; ++k) s = fmaf(A(r, k), B(k, n), s);
        d.x[t] = s;
    }
}
}  // namespace wmma
}  // namespace nvcuda
