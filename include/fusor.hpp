// fusor.hpp — a header-only C++20 wrapper over fusor's C API.
//
// RAII handles (Context, Kernel, Array, Args) that free themselves, errors thrown as
// fusor::Error (carrying the status and the library's message), and std::span for the
// caller's own memory.  Nothing here adds behaviour: each method is one C call.
//
//     fusor::Context ctx;
//     fusor::Kernel k = ctx.compile(source, "axpy.fu");
//     std::vector<double> x(n), y(n), z(n);
//     fusor::Args a(k);
//     a.set("a", 2.0).set("x", ctx.wrap(std::span(x))).set("y", ctx.wrap(std::span(y)))
//      .set("z", ctx.wrap(std::span(z)));
//     k.launch(a);
#ifndef FUSOR_HPP
#define FUSOR_HPP

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fusor.h"

namespace fusor {

class Error : public std::runtime_error {
  public:
    Error(fusor_status status, const char *message)
        : std::runtime_error(message), status_(status) {}
    fusor_status status() const noexcept { return status_; }

  private:
    fusor_status status_;
};

inline void check(fusor_status st) {
    if (st != FUSOR_OK) throw Error(st, fusor_last_error());
}

// The fusor dtype of a C++ element type.
template <typename T> constexpr fusor_dtype dtype_of() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, bool>) return FUSOR_BOOL;
    else if constexpr (std::is_same_v<U, std::int8_t>) return FUSOR_I8;
    else if constexpr (std::is_same_v<U, std::int16_t>) return FUSOR_I16;
    else if constexpr (std::is_same_v<U, std::int32_t>) return FUSOR_I32;
    else if constexpr (std::is_same_v<U, std::int64_t>) return FUSOR_I64;
    else if constexpr (std::is_same_v<U, std::uint8_t>) return FUSOR_U8;
    else if constexpr (std::is_same_v<U, std::uint16_t>) return FUSOR_U16;
    else if constexpr (std::is_same_v<U, std::uint32_t>) return FUSOR_U32;
    else if constexpr (std::is_same_v<U, std::uint64_t>) return FUSOR_U64;
    else if constexpr (std::is_same_v<U, float>) return FUSOR_F32;
    else if constexpr (std::is_same_v<U, double>) return FUSOR_F64;
#ifdef __FLT16_MAX__ // the compiler's IEEE half (GCC 12+, Clang on x86 and Arm)
    else if constexpr (std::is_same_v<U, _Float16>) return FUSOR_F16;
#endif
    else static_assert(sizeof(T) == 0, "no fusor dtype for this element type");
}

// A movable owner of one C handle, freed with `Destroy`.
template <typename H, void (*Destroy)(H *)> class Handle {
  public:
    Handle() = default;
    explicit Handle(H *h) : h_(h) {}
    Handle(Handle &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Handle &operator=(Handle &&o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    ~Handle() { reset(); }
    H *get() const noexcept { return h_; }
    void reset() noexcept {
        if (h_) Destroy(h_);
        h_ = nullptr;
    }

  protected:
    H *h_ = nullptr;
};

class Array : public Handle<fusor_array, fusor_array_destroy> {
  public:
    using Handle::Handle;
    fusor_dtype dtype() const { return fusor_array_dtype(h_); }
    int ndim() const { return fusor_array_ndim(h_); }
    std::vector<std::int64_t> shape() const {
        const std::int64_t *s = fusor_array_shape(h_);
        return std::vector<std::int64_t>(s, s + ndim());
    }
    std::int64_t size() const { return fusor_array_size(h_); }
    // Where the bytes live (host, pinned, device, managed) and on which GPU (-1: host).
    fusor_memory memory(int *device = nullptr) const { return fusor_array_memory(h_, device); }
    // The elements of a C-contiguous array as a span (type-checked against the dtype).
    template <typename T> std::span<T> data() const {
        if (dtype_of<T>() != dtype())
            throw Error(FUSOR_ERROR_DTYPE, "fusor::Array::data: element type does not match dtype");
        return std::span<T>(static_cast<T *>(fusor_array_data(h_)),
                            static_cast<std::size_t>(size()));
    }
};

class Kernel;

class Context : public Handle<fusor_context, fusor_context_destroy> {
  public:
    explicit Context(const fusor_context_options *options = nullptr) {
        check(fusor_context_create(options, &h_));
    }
    inline Kernel compile(const std::string &source, const std::string &filename = "<source>",
                          const char *name = nullptr);
    inline Kernel ufunc(const std::string &expression);
    // Wraps the caller's memory (no copy) with a shape; C order unless strides are given.
    template <typename T>
    Array wrap(std::span<T> data, std::vector<std::int64_t> shape = {},
               const std::vector<std::int64_t> &byte_strides = {}) {
        if (shape.empty()) shape = {static_cast<std::int64_t>(data.size())};
        fusor_array *a = nullptr;
        check(fusor_array_wrap(get(), const_cast<std::remove_cv_t<T> *>(data.data()),
                               dtype_of<T>(), static_cast<int>(shape.size()), shape.data(),
                               byte_strides.empty() ? nullptr : byte_strides.data(), &a));
        return Array(a);
    }
    Array empty(fusor_dtype dtype, std::vector<std::int64_t> shape) {
        fusor_array *a = nullptr;
        check(fusor_array_create(get(), dtype, static_cast<int>(shape.size()), shape.data(), &a));
        return Array(a);
    }
    // An uninitialised array in host, pinned, device or managed memory (GPU `device`).
    Array empty_on(fusor_memory memory, int device, fusor_dtype dtype,
                   std::vector<std::int64_t> shape) {
        fusor_array *a = nullptr;
        check(fusor_array_create_on(get(), memory, device, dtype, static_cast<int>(shape.size()),
                                    shape.data(), &a));
        return Array(a);
    }
};

// An in-order queue of launches, copies and host calls (a CUDA stream on the GPU, a worker
// thread on the host).  Destruction waits for its work.
class Stream : public Handle<fusor_stream, fusor_stream_destroy> {
  public:
    explicit Stream(Context &ctx) { check(fusor_stream_create(ctx.get(), &h_)); }
    void synchronize() { check(fusor_stream_synchronize(h_)); }
};

// Copies src into dst wherever each lives, ordered on `stream` (nullptr: now).
inline void copy(Array &dst, const Array &src, Stream *stream = nullptr) {
    check(fusor_array_copy(dst.get(), src.get(), stream ? stream->get() : nullptr));
}

// Whether a GPU is usable (the reason when not), and how many.
inline bool gpu_usable(std::string *reason = nullptr) {
    bool ok = fusor_gpu_status() == FUSOR_OK;
    if (!ok && reason) *reason = fusor_last_error();
    return ok;
}
inline int gpu_count() { return fusor_gpu_count(); }

class Args;

class Kernel : public Handle<fusor_kernel, fusor_kernel_destroy> {
  public:
    using Handle::Handle;
    std::string name() const { return fusor_kernel_name(h_); }
    inline void launch(Args &args);
    inline void launch_async(Args &args, Stream &stream);
};

class Args : public Handle<fusor_args, fusor_args_destroy> {
  public:
    explicit Args(Kernel &k) { check(fusor_args_create(k.get(), &h_)); }
    Args &set(const char *name, const Array &a) {
        check(fusor_args_set_array(h_, name, a.get()));
        return *this;
    }
    Args &set(const char *name, double v) {
        check(fusor_args_set_f64(h_, name, v));
        return *this;
    }
    Args &set(const char *name, std::int64_t v) {
        check(fusor_args_set_i64(h_, name, v));
        return *this;
    }
    Args &set(const char *name, int v) { return set(name, static_cast<std::int64_t>(v)); }
    Args &set_literal(const char *name, const char *text) {
        check(fusor_args_set_literal(h_, name, text));
        return *this;
    }
    Array array(const char *name) {
        fusor_array *a = nullptr;
        check(fusor_args_get_array(h_, name, &a));
        return Array(a);
    }
    double scalar(const char *name) {
        double v = 0;
        check(fusor_args_get_f64(h_, name, &v));
        return v;
    }
    // Where the last launch ran and why.
    fusor_placement placement() const {
        fusor_placement p;
        check(fusor_args_last_placement(h_, &p));
        return p;
    }
};

// A launch bound once for a time loop: steps allocate and look up nothing.  The Args it
// was made from must outlive it (results are read there).
class Prepared : public Handle<fusor_prepared, fusor_prepared_destroy> {
  public:
    Prepared(Kernel &k, Args &args) { check(fusor_prepare(k.get(), args.get(), &h_)); }
    void launch() { check(fusor_prepared_launch(h_)); }
    void launch_async(Stream &stream) { check(fusor_prepared_launch_async(h_, stream.get())); }
    // Ping-pong: parameters x and y trade arrays for the following launches.
    void swap(const char *x, const char *y) { check(fusor_prepared_swap(h_, x, y)); }
    void set(const char *name, double v) { check(fusor_prepared_set_f64(h_, name, v)); }
    Array array(const char *name) {
        fusor_array *a = nullptr;
        check(fusor_prepared_get_array(h_, name, &a));
        return Array(a);
    }
};

inline Kernel Context::compile(const std::string &source, const std::string &filename,
                               const char *name) {
    fusor_kernel *k = nullptr;
    check(fusor_kernel_compile(get(), source.c_str(), filename.c_str(), name, &k));
    return Kernel(k);
}

inline Kernel Context::ufunc(const std::string &expression) {
    fusor_kernel *k = nullptr;
    check(fusor_ufunc_create(get(), expression.c_str(), &k));
    return Kernel(k);
}

// Several prepared launches run in order as one step (one CUDA Graph on the GPU).  Must
// not outlive its members.
class Sequence : public Handle<fusor_sequence, fusor_sequence_destroy> {
  public:
    explicit Sequence(Context &ctx) { check(fusor_sequence_create(ctx.get(), &h_)); }
    Sequence &add(Prepared &p) {
        check(fusor_sequence_add(h_, p.get()));
        return *this;
    }
    void launch() { check(fusor_sequence_launch(h_)); }
    void launch_async(Stream &stream) { check(fusor_sequence_launch_async(h_, stream.get())); }
};

inline void Kernel::launch(Args &args) { check(fusor_launch(h_, args.get())); }
inline void Kernel::launch_async(Args &args, Stream &stream) {
    check(fusor_launch_async(h_, args.get(), stream.get()));
}

inline void set_num_threads(int n) { check(fusor_set_num_threads(n)); }

} // namespace fusor

#endif // FUSOR_HPP
