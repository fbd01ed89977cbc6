// cpp_stats.cpp — fusor from C++ through fusor.hpp: RAII handles, exceptions, spans.
//
// Normalises a vector to zero mean and unit variance with a two-pass kernel, checks the
// result against a plain loop, and shows that a language error arrives as an exception.
#include <cmath>
#include <cstdio>
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
        return bad || !threw || std::fabs(mu - m) > 1e-12 || std::fabs(sigma - s) > 1e-12;
    } catch (const fusor::Error &e) {
        std::fprintf(stderr, "fusor error: %s\n", e.what());
        return 1;
    }
}
