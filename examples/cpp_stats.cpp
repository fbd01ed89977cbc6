// cpp_stats.cpp — fusor from C++ through fusor.hpp: RAII handles, exceptions, spans.
//
// Normalises a vector to zero mean and unit variance with a two-pass kernel, checks the
// result against a plain loop, and shows that a language error arrives as an exception.
// Then a time loop: a smoothing kernel prepared once (fusor::Prepared), queued on a
// fusor::Stream with its two buffers swapped each step, against the same loop in C++.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "fusor.hpp"

static const char *source = R"(
kernel standardize(x: f64[]) -> (z: f64[], mu: f64, sigma: f64) {
    mu = mean(x)
    sigma = sqrt(mean(square(x - mu)))
    z = (x - mu) / sigma
}
)";

int main() {
    try {
        fusor::Context ctx;
        fusor::Kernel k = ctx.compile(source, "standardize.fu");
        std::vector<double> x(100000), z(x.size());
        for (std::size_t i = 0; i < x.size(); i++) x[i] = std::sin(0.01 * i) * 3 + 1;

        fusor::Args args(k);
        args.set("x", ctx.wrap(std::span(x))).set("z", ctx.wrap(std::span(z)));
        k.launch(args);
        double mu = args.scalar("mu"), sigma = args.scalar("sigma");

        double m = 0, v = 0;
        for (double e : x) m += e;
        m /= x.size();
        for (double e : x) v += (e - m) * (e - m);
        double s = std::sqrt(v / x.size());
        int bad = 0;
        for (std::size_t i = 0; i < x.size(); i++)
            if (std::fabs(z[i] - (x[i] - m) / s) > 1e-9) bad++;
        std::printf("standardize: mu %.12f (loop %.12f), sigma %.12f (loop %.12f), %d mismatches\n",
                    mu, m, sigma, s, bad);

        bool threw = false;
        try {
            ctx.compile("kernel bad(x: f64[]) -> (y: f64[]) { y = x + }", "bad.fu");
        } catch (const fusor::Error &e) {
            threw = e.status() == FUSOR_ERROR_LANGUAGE;
            std::printf("a language error arrives as fusor::Error:\n%s\n", e.what());
        }

        // The time loop: u <- smooth(u), 30 steps, buffers ping-ponged.
        std::vector<double> u(x), w(x.size(), -1.0), ref(x), tmp(x.size());
        const std::size_t n = u.size();
        for (int step = 0; step < 30; step++) {
            for (std::size_t i = 0; i < n; i++)
                tmp[i] = 0.25 * ref[(i + n - 1) % n] + 0.5 * ref[i] + 0.25 * ref[(i + 1) % n];
            ref.swap(tmp);
        }
        fusor::Kernel smooth = ctx.compile(
            "kernel smooth(u: f64[n] wrap) -> (out: f64[]) {\n"
            "    out = 0.25 * u[-1] + 0.5 * u + 0.25 * u[1]\n}\n",
            "smooth.fu");
        fusor::Args sargs(smooth);
        sargs.set("u", ctx.wrap(std::span(u))).set("out", ctx.wrap(std::span(w)));
        fusor::Prepared step(smooth, sargs);
        fusor::Stream stream(ctx);
        for (int i = 0; i < 30; i++) {
            step.launch_async(stream);
            step.swap("u", "out");
        }
        stream.synchronize();
        // Two more steps as a one-member sequence (a step of several kernels is the same).
        fusor::Sequence seq(ctx);
        seq.add(step);
        for (int i = 0; i < 2; i++) {
            seq.launch();
            step.swap("u", "out");
            for (std::size_t j = 0; j < n; j++)
                tmp[j] = 0.25 * ref[(j + n - 1) % n] + 0.5 * ref[j] + 0.25 * ref[(j + 1) % n];
            ref.swap(tmp);
        }
        int differ = 0;
        for (std::size_t i = 0; i < n; i++) differ += u[i] != ref[i];
        std::printf("smoothing loop: %d of %zu points differ from the C++ loop\n", differ, n);
        std::string why;
        if (!fusor::gpu_usable(&why)) std::printf("GPU: not used (%s)\n", why.c_str());
        return bad || !threw || differ || std::fabs(mu - m) > 1e-12 ||
               std::fabs(sigma - s) > 1e-12;
    } catch (const fusor::Error &e) {
        std::fprintf(stderr, "fusor error: %s\n", e.what());
        return 1;
    }
}
