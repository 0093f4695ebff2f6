#include "lazy_file_src.hpp"

#include <fcntl.h>
#include <gst/base/gstbasesrc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {

// The open file, shared by the source and by every memory it handed out: a buffer may outlive
// the element that made it.
struct SharedFile {
    gint refs = 1;
    int fd = -1;
};

SharedFile* file_ref(SharedFile* f) {
    g_atomic_int_inc(&f->refs);
    return f;
}

void file_unref(SharedFile* f) {
    if (f && g_atomic_int_dec_and_test(&f->refs)) {
        if (f->fd >= 0) close(f->fd);
        delete f;
    }
}

// A byte range of the file, read on its first map and kept until the memory is freed.
struct LazyMemory {
    GstMemory mem;
    SharedFile* file;
    guint64 at;  // the file offset of byte 0 of mem.maxsize
    GMutex lock;
    guint8* data;
};

GstMemory* lazy_new(GstAllocator* allocator, SharedFile* file, guint64 at, gsize size) {
    auto* m = g_new0(LazyMemory, 1);
    gst_memory_init(&m->mem, GST_MEMORY_FLAG_READONLY, allocator, nullptr, size, 0, 0, size);
    m->file = file_ref(file);
    m->at = at;
    g_mutex_init(&m->lock);
    return &m->mem;
}

gpointer lazy_map(GstMemory* mem, gsize maxsize, GstMapFlags) {
    auto* m = reinterpret_cast<LazyMemory*>(mem);
    g_mutex_lock(&m->lock);
    if (!m->data) {
        auto* data = static_cast<guint8*>(g_malloc(maxsize ? maxsize : 1));
        gsize done = 0;
        while (done < maxsize) {
            const ssize_t n =
                pread(m->file->fd, data + done, maxsize - done, static_cast<off_t>(m->at + done));
            if (n > 0) {
                done += static_cast<gsize>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else {
                // The file shrank, or the disk failed: the map fails, and so does the demuxer,
                // with its own message. Never zeros in place of the frame.
                GST_WARNING("cannot read %" G_GSIZE_FORMAT " bytes at %" G_GUINT64_FORMAT ": %s",
                            maxsize, m->at, n < 0 ? g_strerror(errno) : "end of file");
                g_free(data);
                data = nullptr;
                break;
            }
        }
        m->data = data;
    }
    gpointer out = m->data;
    g_mutex_unlock(&m->lock);
    return out;
}

void lazy_unmap(GstMemory*) {}

GstMemory* lazy_share(GstMemory* mem, gssize offset, gssize size) {
    auto* m = reinterpret_cast<LazyMemory*>(mem);
    if (size == -1) size = static_cast<gssize>(mem->size) - offset;
    return lazy_new(mem->allocator, m->file, m->at + mem->offset + offset,
                    static_cast<gsize>(size));
}

GstMemory* lazy_copy(GstMemory* mem, gssize offset, gssize size) {
    GstMapInfo info;
    if (!gst_memory_map(mem, &info, GST_MAP_READ)) return nullptr;
    if (size == -1) size = static_cast<gssize>(info.size) - offset;
    GstMemory* copy = gst_allocator_alloc(nullptr, static_cast<gsize>(size), nullptr);
    GstMapInfo to;
    if (copy && gst_memory_map(copy, &to, GST_MAP_WRITE)) {
        memcpy(to.data, info.data + offset, static_cast<gsize>(size));
        gst_memory_unmap(copy, &to);
    }
    gst_memory_unmap(mem, &info);
    return copy;
}

gboolean lazy_is_span(GstMemory*, GstMemory*, gsize*) {
    return FALSE;
}

}  // namespace

// GObject types at file scope: G_DEFINE_TYPE makes static functions of these names.
struct KmsLazyAllocator {
    GstAllocator parent;
};
struct KmsLazyAllocatorClass {
    GstAllocatorClass parent_class;
};
G_DEFINE_TYPE(KmsLazyAllocator, kms_lazy_allocator, GST_TYPE_ALLOCATOR)

static void kms_lazy_allocator_class_init(KmsLazyAllocatorClass* klass) {
    GstAllocatorClass* a = GST_ALLOCATOR_CLASS(klass);
    a->alloc = [](GstAllocator*, gsize, GstAllocationParams*) -> GstMemory* { return nullptr; };
    a->free = [](GstAllocator*, GstMemory* mem) {
        auto* m = reinterpret_cast<LazyMemory*>(mem);
        g_free(m->data);
        file_unref(m->file);
        g_mutex_clear(&m->lock);
        g_free(m);
    };
}

static void kms_lazy_allocator_init(KmsLazyAllocator* self) {
    GstAllocator* a = GST_ALLOCATOR(self);
    a->mem_type = "KmsLazyFile";
    a->mem_map = lazy_map;
    a->mem_unmap = lazy_unmap;
    a->mem_copy = lazy_copy;
    a->mem_share = lazy_share;
    a->mem_is_span = lazy_is_span;
    GST_OBJECT_FLAG_SET(a, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

struct KmsLazyFileSrc {
    GstBaseSrc parent;
    SharedFile* file;
    guint64 size;
    GstAllocator* allocator;
};
struct KmsLazyFileSrcClass {
    GstBaseSrcClass parent_class;
};
G_DEFINE_TYPE(KmsLazyFileSrc, kms_lazy_file_src, GST_TYPE_BASE_SRC)

static GstStaticPadTemplate lazy_src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void kms_lazy_file_src_class_init(KmsLazyFileSrcClass* klass) {
    GObjectClass* o = G_OBJECT_CLASS(klass);
    o->finalize = [](GObject* obj) {
        auto* self = reinterpret_cast<KmsLazyFileSrc*>(obj);
        file_unref(self->file);
        if (self->allocator) gst_object_unref(self->allocator);
        G_OBJECT_CLASS(kms_lazy_file_src_parent_class)->finalize(obj);
    };
    GstElementClass* e = GST_ELEMENT_CLASS(klass);
    gst_element_class_set_static_metadata(e, "kms lazy file source", "Source/File",
                                          "Serves a file's byte ranges, read when mapped", "kms");
    gst_element_class_add_static_pad_template(e, &lazy_src_template);
    GstBaseSrcClass* b = GST_BASE_SRC_CLASS(klass);
    b->is_seekable = [](GstBaseSrc*) -> gboolean { return TRUE; };
    b->get_size = [](GstBaseSrc* src, guint64* size) -> gboolean {
        *size = reinterpret_cast<KmsLazyFileSrc*>(src)->size;
        return TRUE;
    };
    b->create = [](GstBaseSrc* src, guint64 offset, guint length,
                   GstBuffer** out) -> GstFlowReturn {
        auto* self = reinterpret_cast<KmsLazyFileSrc*>(src);
        if (offset >= self->size) return GST_FLOW_EOS;
        const guint64 len = MIN(static_cast<guint64>(length), self->size - offset);
        GstBuffer* buf = gst_buffer_new();
        gst_buffer_append_memory(buf, lazy_new(self->allocator, self->file, offset, len));
        GST_BUFFER_OFFSET(buf) = offset;
        GST_BUFFER_OFFSET_END(buf) = offset + len;
        *out = buf;
        return GST_FLOW_OK;
    };
}

static void kms_lazy_file_src_init(KmsLazyFileSrc* self) {
    self->allocator =
        GST_ALLOCATOR(gst_object_ref_sink(g_object_new(kms_lazy_allocator_get_type(), nullptr)));
}

namespace kms::stats {

GstElement* lazy_file_src_new(const std::string& path, GError** error) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path.c_str(),
                    g_strerror(errno));
        if (fd >= 0) close(fd);
        return nullptr;
    }
    auto* self = static_cast<KmsLazyFileSrc*>(g_object_new(kms_lazy_file_src_get_type(), nullptr));
    self->file = new SharedFile;
    self->file->fd = fd;
    self->size = static_cast<guint64>(st.st_size);
    return GST_ELEMENT(self);
}

}  // namespace kms::stats
