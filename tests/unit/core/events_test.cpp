#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kms/error.hpp"
#include "kms/events.hpp"

SCENARIO("events are JSON lines with type and timestamp first", "[events]") {
    const auto path = std::filesystem::temp_directory_path() / "kms-events-test.jsonl";
    {
        kms::EventWriter w;
        CHECK_FALSE(w.enabled());
        w.emit("dropped");  // no destination: nothing happens
        w.open(path.string());
        REQUIRE(w.enabled());
        w.emit("ice-connection-state", kms::Json{{"state", "connected"}});
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&w, t] {
                for (int i = 0; i < 50; ++i)
                    w.emit("inbound-rtp", kms::Json{{"thread", t}, {"packetsReceived", i}});
            });
        for (auto& t : threads) t.join();
    }
    std::ifstream in(path);
    std::string line;
    int lines = 0;
    const double now = kms::now_ms();
    while (std::getline(in, line)) {
        auto j = kms::Json::parse(line);  // every line is whole JSON: no interleaving
        REQUIRE(j.is_object());
        auto it = j.begin();
        CHECK(it.key() == "type");
        ++it;
        CHECK(it.key() == "timestamp");
        // Timestamps are rounded to 0.1 ms, so one may read up to 0.05 ms past now.
        CHECK(j["timestamp"].get<double>() <= now + 0.1);
        CHECK(j["timestamp"].get<double>() > now - 60'000);
        ++lines;
    }
    CHECK(lines == 201);
    std::filesystem::remove(path);
}

SCENARIO("an events file that cannot be written is an output error", "[events]") {
    kms::EventWriter w;
    try {
        w.open("/nonexistent-dir/events.jsonl");
        FAIL("opened");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::Io);
    }
    CHECK_THROWS_AS(w.open("fd:x"), kms::Error);
}

SCENARIO("a field named type or timestamp cannot hide the event's own", "[events]") {
    const auto path = std::filesystem::temp_directory_path() / "kms-events-type.jsonl";
    {
        kms::EventWriter w;
        w.open(path.string());
        w.emit("candidate", kms::Json{{"type", "host"}, {"timestamp", 1}, {"port", 9}});
    }
    std::ifstream in(path);
    std::string line;
    REQUIRE(std::getline(in, line));
    auto j = kms::Json::parse(line);
    CHECK(j["type"] == "candidate");
    CHECK(j["timestamp"].get<double>() > 1);
    CHECK(j["port"] == 9);
    std::filesystem::remove(path);
}
