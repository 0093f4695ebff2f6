// What lets a receiver tell apart the streams of one bundle (RFC 8843 §9.2): the MID header
// extension, SSRCs announced with a=ssrc, and a=msid; and the transport-wide-cc extension that
// gives the transport-cc feedback kms advertises a meaning. webrtcbin 1.22 writes a=ssrc lines
// and a=extmap lines only from caps fields (ssrc, extmap-N), and puts the extensions into RTP only
// when the payloader has them, so kms sets both, and trims the answer to what it agreed to.
// Private to libkms.
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>

#include <map>
#include <string>

namespace kms::webrtc {

inline constexpr const char* kMidUri = "urn:ietf:params:rtp-hdrext:sdes:mid";
inline constexpr const char* kTwccUri =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// The ids an m-line gives the two header extensions kms uses; 0 when it has none.
struct ExtIds {
    int mid = 0;
    int twcc = 0;
    bool operator==(const ExtIds& o) const { return mid == o.mid && twcc == o.twcc; }
};

/// What kms's own offers use.
inline constexpr ExtIds kOfferExtIds{1, 2};

/// The ids an m-line's a=extmap:ID[/direction] URI lines give the two extensions.
ExtIds extmap_ids(const GstSDPMedia* media);

/// The ids of the first m-line of sdp that names each extension: in a bundle, one id per URI.
ExtIds bundle_extmap_ids(const GstSDPMessage* sdp);

/// Adds extmap-N fields for ids, and ssrc when it is not 0, to every structure of caps (which
/// must be writable): webrtcbin turns them into a=extmap and a=ssrc lines.
void add_to_caps(GstCaps* caps, ExtIds ids, guint32 ssrc);

/// Leaves on an m-line only the a=extmap lines of ids, once each (RFC 8285 §6: an answer names
/// only the extensions it will use), adding any of ids that is missing.
void keep_extmaps(GstSDPMedia* media, ExtIds ids);

/// Removes repeats of an attribute line, key and value alike (webrtcbin 1.22 writes an offer's
/// a=ssrc lines once per codec).
void drop_repeated(GstSDPMedia* media, const char* key);

/// Adds a=msid:STREAM TRACK (RFC 8830) unless the m-line has one.
void add_msid(GstSDPMedia* media, const std::string& stream, const std::string& track);

/// Every SSRC the description announces with a=ssrc, to the index of its m-line.
std::map<guint32, int> announced_ssrcs(const GstSDPMessage* sdp);

/// The retransmission SSRCs the description pairs with a media SSRC (a=ssrc-group:FID MEDIA RTX,
/// RFC 5576 §4.2 and RFC 4588 §8.1): each RTX SSRC to its media SSRC. A pair counts only when
/// a=ssrc lines of the group's own m-line announce both, and no SSRC is both a stream and a
/// repair.
std::map<guint32, guint32> repair_ssrcs(const GstSDPMessage* sdp);

/// The MID an RTP packet carries in a one- or two-byte header extension with this id (RFC 8285),
/// or "" when it carries none.
std::string read_mid(GstBuffer* rtp, int id);

/// The SSRC of an RTP packet (RFC 3550 §5.1), 0 when it is too short.
guint32 read_ssrc(GstBuffer* rtp);

/// Gives a payloader the header extensions of ids; the MID extension writes mid.
/// False when GStreamer lacks one (gstreamer1.0-plugins-good 1.22 has both).
bool add_extensions(GstElement* payloader, ExtIds ids, const std::string& mid);

/// The MID extension of 1.22 refuses to negotiate (and so stops the payloader) when the caps
/// downstream already hold a-mid, which webrtcbin's sink pads answer from the codec preferences;
/// this takes a-mid out of the caps query replies a payloader's src pad gets.
void hide_mid_from_caps_queries(GstPad* payloader_src);

}  // namespace kms::webrtc
