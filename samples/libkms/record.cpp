// The smallest libkms program: records SOURCE (any media URI kms-record takes) into FILE for
// SECONDS, Source -> Sink joined by Pipeline::connect(), which passes through what the
// container takes and transcodes only what it does not.
//
//   c++ -std=c++17 record.cpp $(pkg-config --cflags --libs libkms) -o record
//   ./record test:av out.webm 3
#include <cstdio>
#include <cstdlib>

#include <kms/error.hpp>
#include <kms/loop.hpp>
#include <kms/pipeline.hpp>
#include <kms/sink.hpp>
#include <kms/source.hpp>
#include <kms/uri.hpp>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s SOURCE FILE SECONDS\n", argv[0]);
        return 2;
    }
    try {
        kms::Source source(kms::parse_source_uri(argv[1]));
        kms::Sink sink(kms::parse_sink_uri(argv[2]));
        kms::Loop loop;
        int rc = 0;
        // ended: every stream reached the file and it is finalised; failed: the pipeline
        // stopped, saying why in the element's words.
        kms::Pipeline pipeline("record", {[&] { loop.quit(); },
                                          [&](const kms::Error& e) {
                                              std::fprintf(stderr, "record: %s\n", e.what());
                                              rc = 1;
                                              loop.quit();
                                          }});
        pipeline.connect(source, sink);
        pipeline.start();
        loop.after(static_cast<unsigned>(std::atof(argv[3]) * 1000), [&] { pipeline.stop(); });
        loop.run();
        return rc;
    } catch (const kms::Error& e) {
        std::fprintf(stderr, "record: %s\n", e.what());
        return 1;
    }
}
