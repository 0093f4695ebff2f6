// kms-filter's command line (kms::parse_filters): named filters with their arguments and
// options, gst-launch fragments, and the errors a user sees. A stage is judged by what it does
// to a frame (the caps that reach a sink behind it), not by the text it was built from.
#include <gst/gst.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "kms/error.hpp"
#include "kms/filter.hpp"
#include "kms/runtime.hpp"

using kms::ErrorCode;
using kms::FilterStage;
using kms::parse_filters;

namespace {

struct Frame {
    int width = 0, height = 0, fps_n = 0, fps_d = 0;
    std::string format;
};

// One second of 320x240 30 fps test pattern through the video stages: what reaches the sink.
Frame through(const std::vector<FilterStage>& stages) {
    std::string desc =
        "videotestsrc num-buffers=30 pattern=smpte ! "
        "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
    for (const auto& s : stages)
        if (s.kind == "video") desc += " ! videoconvert ! " + s.description;
    desc += " ! fakesink name=out";
    GError* err = nullptr;
    GstElement* pipe = gst_parse_launch(desc.c_str(), &err);
    REQUIRE(pipe);
    REQUIRE(err == nullptr);
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(pipe);
    GstMessage* msg = gst_bus_timed_pop_filtered(
        bus, 10 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    REQUIRE(msg);
    CHECK(GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS);
    gst_message_unref(msg);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipe), "out");
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    GstCaps* caps = gst_pad_get_current_caps(pad);
    Frame f;
    if (caps) {
        const GstStructure* s = gst_caps_get_structure(caps, 0);
        gst_structure_get_int(s, "width", &f.width);
        gst_structure_get_int(s, "height", &f.height);
        gst_structure_get_fraction(s, "framerate", &f.fps_n, &f.fps_d);
        if (const char* fmt = gst_structure_get_string(s, "format")) f.format = fmt;
        gst_caps_unref(caps);
    }
    gst_object_unref(pad);
    gst_object_unref(sink);
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(pipe);
    return f;
}

ErrorCode code_of(const std::vector<std::string>& args, std::string* message = nullptr) {
    try {
        parse_filters(args);
    } catch (const kms::Error& e) {
        if (message) *message = e.what();
        return e.code();
    }
    FAIL("parsed: " << args.front());
    return ErrorCode::Runtime;
}

}  // namespace

TEST_CASE("named filters change the frame as their arguments say", "[filter][parse]") {
    kms::init();
    SECTION("rotate 90 turns 320x240 into 240x320") {
        const Frame f = through(parse_filters({"rotate", "90"}));
        CHECK(f.width == 240);
        CHECK(f.height == 320);
    }
    SECTION("scale WxH gives that size") {
        const Frame f = through(parse_filters({"scale", "160x120"}));
        CHECK(f.width == 160);
        CHECK(f.height == 120);
    }
    SECTION("fps N gives that rate") {
        const Frame f = through(parse_filters({"fps", "10"}));
        CHECK(f.fps_n == 10);
        CHECK(f.fps_d == 1);
    }
    SECTION("crop takes its edges off") {
        const Frame f = through(parse_filters({"crop", "left=20", "right=20", "top=10"}));
        CHECK(f.width == 280);
        CHECK(f.height == 230);
    }
    SECTION("several filters apply in order: scale, then rotate") {
        const auto stages = parse_filters({"scale", "160x120", "rotate", "90"});
        REQUIRE(stages.size() == 2);
        CHECK(stages[0].name == "scale");
        CHECK(stages[1].name == "rotate");
        const Frame f = through(stages);
        CHECK(f.width == 120);
        CHECK(f.height == 160);
    }
    SECTION("a fragment runs as written, and KEY=VALUE after it sets its last element") {
        const auto stages =
            parse_filters({"videoscale ! capsfilter", "caps=video/x-raw,width=64,height=48"});
        REQUIRE(stages.size() == 1);
        CHECK(stages[0].kind == "video");
        const Frame f = through(stages);
        CHECK(f.width == 64);
        CHECK(f.height == 48);
    }
}

TEST_CASE("filters know their kind and whether they only watch", "[filter][parse]") {
    kms::init();
    const auto stages = parse_filters({"flip", "volume", "0.5", "level"});
    REQUIRE(stages.size() == 3);
    CHECK(stages[0].kind == "video");
    CHECK_FALSE(stages[0].analysis);
    CHECK(stages[1].kind == "audio");
    CHECK_FALSE(stages[1].analysis);
    CHECK(stages[2].kind == "audio");
    CHECK(stages[2].analysis);
}

TEST_CASE("mistakes are named, with the class of exit they get", "[filter][parse]") {
    kms::init();
    std::string msg;
    SECTION("an unknown element names the closest known one (exit 2)") {
        CHECK(code_of({"videoflipp"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(msg.find("closest is videoflip") != std::string::npos);
    }
    SECTION("a bad argument names the filter (exit 2)") {
        CHECK(code_of({"scale", "big"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(msg.find("scale") != std::string::npos);
        CHECK(code_of({"fps", "0"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(code_of({"volume"}, &msg) == ErrorCode::InvalidArgument);
    }
    SECTION("an option a filter does not take is refused, not ignored (exit 2)") {
        CHECK(code_of({"volume", "2", "mute=true"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(msg.find("mute=true") != std::string::npos);
        for (const auto& args : std::vector<std::vector<std::string>>{{"rotate", "90", "x=1"},
                                                                      {"scale", "64x48", "x=1"},
                                                                      {"fps", "10", "x=1"},
                                                                      {"grayscale", "x=1"},
                                                                      {"resample", "16000", "x=1"}})
            CHECK(code_of(args) == ErrorCode::InvalidArgument);
    }
    SECTION("crop takes pixels, 0 or more, and knows the smallest picture it leaves any of") {
        CHECK(code_of({"crop", "left=-5"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(msg.find("left=-5") != std::string::npos);
        CHECK(code_of({"crop", "top=ten"}) == ErrorCode::InvalidArgument);
        const auto st = parse_filters({"crop", "left=20", "right=30", "bottom=5"});
        REQUIRE(st.size() == 1);
        CHECK(st[0].min_width == 51);
        CHECK(st[0].min_height == 6);
    }
    SECTION("videoflip method= with a value it lacks names method, as the user wrote it") {
        CHECK(code_of({"videoflip method=sideways"}, &msg) == ErrorCode::InvalidArgument);
        CHECK(msg.find("method") != std::string::npos);
        CHECK(msg.find("video-direction") == std::string::npos);
    }
    SECTION("a fragment whose elements cannot link names the pads (exit 3)") {
        CHECK(code_of({"videoflip ! audioconvert"}, &msg) == ErrorCode::BadInput);
        CHECK(msg.find("videoflip") != std::string::npos);
        CHECK(msg.find("audioconvert") != std::string::npos);
    }
}
